#![allow(clippy::unwrap_used)]
//! Integration tests of the market contract: the native build against an independent
//! brute-force reference model (`reference`, `props`), and the committed Wasm build against
//! the native build (`wasm_native`).

mod props;
mod reference;
mod wasm_native;
