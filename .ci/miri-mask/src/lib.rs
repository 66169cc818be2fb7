//! The crate's masking module, compiled on its own for Miri (see `.ci/miri`).
#[path = "../../../src/mask.rs"]
pub mod mask;
