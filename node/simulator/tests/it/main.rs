//! Integration tests of the simulator: its machinery (with small engines written here) and
//! the real engines under the fault models.
#![allow(clippy::unwrap_used)]

mod machinery;
mod scenarios;
mod toy;
