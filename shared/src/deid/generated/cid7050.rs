//! PS3.16 CID 7050 De-identification Method (coding scheme DCM).
//!
//! Automatically generated from shared/data/cid7050.csv by the generator in
//! shared/tests/it/deid_generated.rs. Edit the generator, not this file. Regenerate with
//! `PSEAL_REGENERATE=1 cargo test -p pseal --test it deid_generated::`.

/// `(code value, code meaning)` of every concept of CID 7050 (13 rows).
#[rustfmt::skip]
pub(crate) static CID7050: [(&str, &str); 13] = [
    ("113100", "Basic Application Confidentiality Profile"),
    ("113101", "Clean Pixel Data Option"),
    ("113102", "Clean Recognizable Visual Features Option"),
    ("113103", "Clean Graphics Option"),
    ("113104", "Clean Structured Content Option"),
    ("113105", "Clean Descriptors Option"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113109", "Retain Device Identity Option"),
    ("113110", "Retain UIDs Option"),
    ("113111", "Retain Safe Private Option"),
    ("113112", "Retain Institution Identity Option"),
];
