//! A client connection fed arbitrary bytes, whole and in arbitrary chunks.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|input: &[u8]| common::check(rfc6455::Role::Client, false, input));
