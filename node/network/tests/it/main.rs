//! Integration tests of the network over loopback TCP: real swarms, tcp/0 ports.

mod common;
mod direct;
mod gossip;
mod lifecycle;
mod limits;
mod permission;
