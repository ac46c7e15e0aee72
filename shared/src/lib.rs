//! placeholder

pub mod deid;
