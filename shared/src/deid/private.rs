//! Private attributes: removed, except the safe private attributes of Table E.3.10-1 when the
//! Retain Safe Private Option is on, matched by group, private creator and element byte.

use std::collections::{BTreeMap, HashMap};

use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_object::mem::InMemElement;

use super::generated::safe_private::SAFE_PRIVATE;

/// One row of Table E.3.10-1.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SafePrivate {
    /// The odd group.
    pub(crate) group: u16,
    /// The low byte of the element (`xxEE`); the high byte is the block reserved by the creator.
    pub(crate) element: u8,
    /// The private creator string.
    pub(crate) creator: &'static str,
    /// The VR the standard lists (`""` when it lists none, `"OW/OB"` for either).
    pub(crate) vr: &'static str,
    /// What the attribute means.
    pub(crate) meaning: &'static str,
}

/// Lookup of the safe private list by `(group, creator, element byte)`.
#[derive(Clone, Debug)]
pub(crate) struct SafePrivateIndex {
    /// `(group, element byte)` → indices of the rows with that group and byte (one per creator).
    map: HashMap<(u16, u8), Vec<usize>>,
}

impl SafePrivateIndex {
    /// Index [`SAFE_PRIVATE`].
    pub(crate) fn new() -> SafePrivateIndex {
        let mut map: HashMap<(u16, u8), Vec<usize>> = HashMap::new();
        for (i, s) in SAFE_PRIVATE.iter().enumerate() {
            map.entry((s.group, s.element)).or_default().push(i);
        }
        SafePrivateIndex { map }
    }

    /// The safe-list row for an element, if any. Creator strings compare exactly (PS3.5 makes
    /// them case-sensitive), after removing padding.
    pub(crate) fn find(&self, group: u16, creator: &str, element: u8) -> Option<&'static SafePrivate> {
        self.map
            .get(&(group, element))?
            .iter()
            .filter_map(|&i| SAFE_PRIVATE.get(i))
            .find(|s| s.creator == creator)
    }
}

/// The private creators of one dataset: block number (`0x10..=0xFF`) → creator string, per
/// odd group.
#[derive(Default)]
pub(crate) struct Creators {
    map: BTreeMap<(u16, u8), String>,
}

impl Creators {
    /// Collect the private creator elements `(gggg,0010)`–`(gggg,00FF)` of a dataset.
    pub(crate) fn collect<'a>(elements: impl Iterator<Item = &'a InMemElement>) -> Creators {
        let mut map = BTreeMap::new();
        for e in elements {
            let (group, element) = (e.tag().group(), e.tag().element());
            if group % 2 == 1 && (0x0010..=0x00FF).contains(&element) {
                if let Value::Primitive(p) = e.value() {
                    let creator = p.to_str().trim_matches(['\0', ' ']).to_string();
                    map.insert((group, element as u8), creator);
                }
            }
        }
        Creators { map }
    }

    /// The creator that reserved the block of a private data element `(gggg,bbee)`.
    pub(crate) fn of(&self, group: u16, element: u16) -> Option<&str> {
        let block = (element >> 8) as u8;
        self.map.get(&(group, block)).map(String::as_str)
    }
}

/// What happens to a private element (not a creator element).
pub(crate) enum PrivateDecision {
    /// Removed.
    Remove,
    /// Kept; the creator element of its block must be kept with it.
    Keep(&'static SafePrivate),
}

/// Decide a private data element `(gggg,eeee)` with `eeee >= 0x1000`.
pub(crate) fn decide(
    index: &SafePrivateIndex,
    retain_safe: bool,
    creators: &Creators,
    element: &InMemElement,
) -> PrivateDecision {
    if !retain_safe {
        return PrivateDecision::Remove;
    }
    let (group, el) = (element.tag().group(), element.tag().element());
    if el < 0x1000 || matches!(group, 0x0001 | 0x0003 | 0x0005 | 0x0007 | 0xFFFF) {
        return PrivateDecision::Remove;
    }
    let Some(creator) = creators.of(group, el) else {
        return PrivateDecision::Remove;
    };
    let Some(safe) = index.find(group, creator, (el & 0xFF) as u8) else {
        return PrivateDecision::Remove;
    };
    let vr = element.vr().to_string();
    let vr_ok = safe.vr.is_empty() || vr == "UN" || safe.vr.split('/').any(|v| v == vr);
    if vr_ok {
        PrivateDecision::Keep(safe)
    } else {
        PrivateDecision::Remove
    }
}
