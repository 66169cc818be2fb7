//! A server connection with permessage-deflate in force (parameters picked by
//! the input) fed arbitrary bytes, whole and in arbitrary chunks: the inflate
//! path must agree with itself however its input is cut, reject corrupt
//! streams cleanly, and never hold more than a message's worth of output.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|input: &[u8]| common::check(rfc6455::Role::Server, true, input));
