//! Harnesses for Satchel's tests (a dev-dependency only): real engines the
//! tests start themselves, never mocks.

pub mod postgres;
