//! Option lists as a site configures them: names, the default, errors, serialization.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use pseal::deid::{DeidConfig, DeidOption, Options, OptionsError, Profile};

#[test]
fn none_default_and_lists() {
    assert!(Options::parse_list("none").unwrap().names().is_empty());
    assert_eq!(Options::parse_list("default").unwrap(), Options::default_profile());
    assert_eq!(Options::default(), Options::default_profile());
    assert_eq!(
        Options::default_profile().names(),
        [
            "retain-patient-characteristics",
            "retain-long-modified-dates",
            "clean-descriptors"
        ]
    );
    let o = Options::parse_list(" clean-descriptors , retain-uids,retain-uids").unwrap();
    assert_eq!(o.names(), ["retain-uids", "clean-descriptors"]);
    assert!(o.contains(DeidOption::RetainUids));
    assert!(!o.contains(DeidOption::RetainSafePrivate));
    let all = DeidOption::ALL
        .into_iter()
        .filter(|o| *o != DeidOption::RetainLongFullDates)
        .map(DeidOption::name)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(Options::parse_list(&all).unwrap().names().len(), 9);
}

#[test]
fn errors_name_the_problem() {
    let err = Options::parse_list("retain-uids,retain-everything").unwrap_err();
    assert!(matches!(err, OptionsError::Unknown { ref name, .. } if name == "retain-everything"));
    let message = err.to_string();
    assert!(message.contains("retain-everything"));
    for o in DeidOption::ALL {
        assert!(message.contains(o.name()), "{message}");
    }
    assert_eq!(
        Options::parse_list("retain-long-full-dates,retain-long-modified-dates").unwrap_err(),
        OptionsError::ConflictingDateOptions
    );
    assert_eq!(Options::parse_list("").unwrap_err(), OptionsError::Empty);
    assert!(matches!(
        Options::parse_list("default,retain-uids").unwrap_err(),
        OptionsError::KeywordInList { .. }
    ));
}

#[test]
fn options_serialize_as_canonical_names() {
    let o = Options::parse_list("clean-descriptors,retain-uids").unwrap();
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(json, r#"["retain-uids","clean-descriptors"]"#);
    assert_eq!(serde_json::from_str::<Options>(&json).unwrap(), o);
    assert_eq!(serde_json::from_str::<Options>("[]").unwrap(), Options::none());
    assert!(serde_json::from_str::<Options>(r#"["retain-names"]"#).is_err());
    assert!(serde_json::from_str::<Options>(r#"["retain-long-full-dates","retain-long-modified-dates"]"#).is_err());
}

#[test]
fn config_defaults_to_the_default_profile() {
    let config: DeidConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config.options, Options::default_profile());
    assert!(config.allow_burned_in.is_empty());
    let config: DeidConfig =
        toml::from_str("options = [\"retain-uids\"]\nallow_burned_in = [\"1.2.840.10008.5.1.4.1.1.7\"]").unwrap();
    let profile = Profile::new(&config);
    assert_eq!(profile.options().names(), ["retain-uids"]);
    assert_eq!(profile.allow_burned_in(), ["1.2.840.10008.5.1.4.1.1.7"]);
    assert_eq!(
        profile.cid7050_codes(),
        [
            ("113100", "Basic Application Confidentiality Profile"),
            ("113110", "Retain UIDs Option")
        ]
    );
}

#[test]
fn every_option_has_its_cid_7050_code() {
    let expected = [
        "113111", "113110", "113109", "113112", "113108", "113106", "113107", "113105", "113104", "113103",
    ];
    for (option, code) in DeidOption::ALL.into_iter().zip(expected) {
        let profile = Profile::new(&DeidConfig {
            options: [option].into_iter().collect(),
            allow_burned_in: Vec::new(),
        });
        assert_eq!(
            profile.cid7050_codes(),
            [
                ("113100", "Basic Application Confidentiality Profile"),
                (code, option.code_meaning())
            ]
        );
    }
}

#[test]
fn both_date_options_built_in_code_resolve_to_modified_dates() {
    let both: Options = [DeidOption::RetainLongFullDates, DeidOption::RetainLongModifiedDates]
        .into_iter()
        .collect();
    let profile = Profile::new(&DeidConfig {
        options: both,
        allow_burned_in: Vec::new(),
    });
    assert_eq!(profile.options().names(), ["retain-long-modified-dates"]);
    assert_eq!(pseal::deid::longitudinal_temporal_information(&profile), "MODIFIED");
}
