//! Tables generated from the CSVs in `shared/data/` by `shared/tests/it/deid_generated.rs` (and, for
//! the IOD requirements, `shared/tests/it/deid_generated/iod.rs`).

pub(crate) mod cid7050;
pub(crate) mod iod;
pub(crate) mod safe_private;
pub(crate) mod table_e1_1;
