//! The options of the confidentiality profile a site selects, their names and pseal's default.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One option of PS3.15 Table E.1-1 (the option columns, in table order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeidOption {
    /// Retain Safe Private Option: keep the private attributes of Table E.3.10-1.
    RetainSafePrivate,
    /// Retain UIDs Option: keep the original UIDs instead of placeholders.
    RetainUids,
    /// Retain Device Identity Option: keep serial numbers, station names and the like.
    RetainDeviceIdentity,
    /// Retain Institution Identity Option: keep institution names and addresses.
    RetainInstitutionIdentity,
    /// Retain Patient Characteristics Option: keep sex, age, size, weight and the like.
    RetainPatientCharacteristics,
    /// Retain Longitudinal Temporal Information, Full Dates Option: keep dates and times.
    RetainLongFullDates,
    /// Retain Longitudinal Temporal Information, Modified Dates Option. In pseal the steward
    /// writes the shifted dates; the hospital captures the originals into the sealed identity
    /// record and removes them from the output.
    RetainLongModifiedDates,
    /// Clean Descriptors Option: keep descriptions made only of acquisition vocabulary.
    CleanDescriptors,
    /// Clean Structured Content Option: keep structured content sequences, cleaned.
    CleanStructuredContent,
    /// Clean Graphics Option: keep graphic annotation sequences, cleaned.
    CleanGraphics,
}

impl DeidOption {
    /// Every option, in the order of the columns of Table E.1-1.
    pub const ALL: [DeidOption; 10] = [
        DeidOption::RetainSafePrivate,
        DeidOption::RetainUids,
        DeidOption::RetainDeviceIdentity,
        DeidOption::RetainInstitutionIdentity,
        DeidOption::RetainPatientCharacteristics,
        DeidOption::RetainLongFullDates,
        DeidOption::RetainLongModifiedDates,
        DeidOption::CleanDescriptors,
        DeidOption::CleanStructuredContent,
        DeidOption::CleanGraphics,
    ];

    /// The canonical name used in configuration files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "retain-safe-private",
            DeidOption::RetainUids => "retain-uids",
            DeidOption::RetainDeviceIdentity => "retain-device-identity",
            DeidOption::RetainInstitutionIdentity => "retain-institution-identity",
            DeidOption::RetainPatientCharacteristics => "retain-patient-characteristics",
            DeidOption::RetainLongFullDates => "retain-long-full-dates",
            DeidOption::RetainLongModifiedDates => "retain-long-modified-dates",
            DeidOption::CleanDescriptors => "clean-descriptors",
            DeidOption::CleanStructuredContent => "clean-structured-content",
            DeidOption::CleanGraphics => "clean-graphics",
        }
    }

    /// The option with this canonical name.
    pub fn from_name(name: &str) -> Option<DeidOption> {
        DeidOption::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The code meaning of this option's concept in CID 7050 (DCM), by which its code value is
    /// looked up in the generated CID 7050 table.
    pub fn code_meaning(self) -> &'static str {
        match self {
            DeidOption::RetainSafePrivate => "Retain Safe Private Option",
            DeidOption::RetainUids => "Retain UIDs Option",
            DeidOption::RetainDeviceIdentity => "Retain Device Identity Option",
            DeidOption::RetainInstitutionIdentity => "Retain Institution Identity Option",
            DeidOption::RetainPatientCharacteristics => "Retain Patient Characteristics Option",
            DeidOption::RetainLongFullDates => "Retain Longitudinal Temporal Information Full Dates Option",
            DeidOption::RetainLongModifiedDates => "Retain Longitudinal Temporal Information Modified Dates Option",
            DeidOption::CleanDescriptors => "Clean Descriptors Option",
            DeidOption::CleanStructuredContent => "Clean Structured Content Option",
            DeidOption::CleanGraphics => "Clean Graphics Option",
        }
    }

    /// The position of the option's column among the option columns of Table E.1-1.
    pub(crate) fn column(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DeidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for DeidOption {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for DeidOption {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeidOption, D::Error> {
        let name = String::deserialize(deserializer)?;
        DeidOption::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(OptionsError::Unknown {
                valid: DeidOption::ALL.map(DeidOption::name).join(", "),
                name,
            })
        })
    }
}

/// A set of [`DeidOption`]s: what a site's profile applies on top of the Basic Profile.
///
/// `Options::default()` is pseal's documented default profile ([`Options::default_profile`]),
/// not the empty set; the Basic Profile alone is [`Options::none`]. Serialized as the list of
/// canonical names in table order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Options {
    bits: u16,
}

/// Why a list of options was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// A name that is not one of the options.
    #[error(
        "unknown de-identification option '{name}'; use 'none', 'default', or a comma-separated \
         list of: {valid}"
    )]
    Unknown {
        /// The name as given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// Both date options at once.
    #[error(
        "'retain-long-full-dates' and 'retain-long-modified-dates' exclude each other; choose \
         one (pseal's default is retain-long-modified-dates: the steward shifts dates)"
    )]
    ConflictingDateOptions,
    /// An empty list.
    #[error("no de-identification options given; use 'none' for the Basic Profile alone")]
    Empty,
    /// `none` or `default` inside a list.
    #[error("'{keyword}' stands alone; it cannot be combined with other options in a list")]
    KeywordInList {
        /// `none` or `default`.
        keyword: String,
    },
}

impl Options {
    /// The Basic Profile alone: no option.
    pub fn none() -> Options {
        Options { bits: 0 }
    }

    /// pseal's default for brain-tumour MRI research: `retain-patient-characteristics`
    /// (age, sex, size and weight are research variables), `retain-long-modified-dates` (the
    /// steward shifts dates per patient so intervals survive) and `clean-descriptors` (series
    /// descriptions tell T1, T1 with contrast, T2 and FLAIR apart). See
    /// `docs/deidentification.md` for why the others are off.
    pub fn default_profile() -> Options {
        Options::from_iter([
            DeidOption::RetainPatientCharacteristics,
            DeidOption::RetainLongModifiedDates,
            DeidOption::CleanDescriptors,
        ])
    }

    /// Parse `none`, `default`, or a comma-separated list of canonical option names.
    pub fn parse_list(s: &str) -> Result<Options, OptionsError> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "none" => return Ok(Options::none()),
            "default" => return Ok(Options::default_profile()),
            "" => return Err(OptionsError::Empty),
            _ => {}
        }
        let mut names = Vec::new();
        for part in s.split(',') {
            let part = part.trim().to_ascii_lowercase();
            if part.is_empty() {
                continue;
            }
            names.push(part);
        }
        Options::from_names(&names)
    }

    /// Build from canonical names (as in a configuration file).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Options, OptionsError> {
        if names.is_empty() {
            return Err(OptionsError::Empty);
        }
        let mut options = Options::none();
        for name in names {
            let name = name.as_ref();
            if name == "none" || name == "default" {
                return Err(OptionsError::KeywordInList {
                    keyword: name.to_string(),
                });
            }
            match DeidOption::from_name(name) {
                Some(o) => options.insert(o),
                None => {
                    return Err(OptionsError::Unknown {
                        name: name.to_string(),
                        valid: DeidOption::ALL.map(DeidOption::name).join(", "),
                    })
                }
            }
        }
        options.validate()?;
        Ok(options)
    }

    fn validate(self) -> Result<(), OptionsError> {
        if self.contains(DeidOption::RetainLongFullDates) && self.contains(DeidOption::RetainLongModifiedDates) {
            return Err(OptionsError::ConflictingDateOptions);
        }
        Ok(())
    }

    fn insert(&mut self, o: DeidOption) {
        self.bits |= 1 << o.column();
    }

    /// Whether the option is selected.
    pub fn contains(&self, o: DeidOption) -> bool {
        self.bits & (1 << o.column()) != 0
    }

    /// The selected options, in table order.
    pub fn iter(&self) -> impl Iterator<Item = DeidOption> + '_ {
        DeidOption::ALL.into_iter().filter(|o| self.contains(*o))
    }

    /// The canonical names of the selected options, in table order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(DeidOption::name).collect()
    }
}

impl FromIterator<DeidOption> for Options {
    /// Collect options. Both date options together are not rejected here; [`Options::parse_list`]
    /// and deserialization reject them, and a [`super::Profile`] gives modified dates precedence.
    fn from_iter<I: IntoIterator<Item = DeidOption>>(iter: I) -> Options {
        let mut options = Options::none();
        for o in iter {
            options.insert(o);
        }
        options
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::default_profile()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bits == 0 {
            f.write_str("none")
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

impl Serialize for Options {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Options, D::Error> {
        let names: Vec<String> = Vec::deserialize(deserializer)?;
        if names.is_empty() {
            return Ok(Options::none());
        }
        Options::from_names(&names).map_err(serde::de::Error::custom)
    }
}
