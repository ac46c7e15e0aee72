//! pseal-central's library tests (store, publishing), gathered in one binary so that the library
//! is linked once; each former `tests/*.rs` file is a module.

mod publish_run;
mod store;
mod store_batch;
