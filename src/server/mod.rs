//! The built-in HTTP/1.1 server (feature `server`): the Kestrel analogue.
//!
//! Strict by default (RFC 9112), with Kestrel's limits and timeouts
//! ([`Limits`]). This module is being built up in pieces: the head parser and
//! the body decoders are here; the connection loop and the listener follow.

// The connection loop that calls the parser and decoders is in progress.
#![allow(dead_code, reason = "the connection loop that uses these lands next")]

mod decode;
mod limits;
mod parse;

pub use limits::Limits;
