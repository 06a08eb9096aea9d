//! Tests of `HyperServer` over real sockets on 127.0.0.1, one binary (one
//! link) with a module per area.

mod common;
mod echo;
mod h2;
mod lifecycle;
mod parity;
mod stop;
mod tools;
