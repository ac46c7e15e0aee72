//! The recursive walk over a dataset and all its sequence items: every attribute goes to the
//! table, the private rule or the rule for attributes outside the table, and comes out kept,
//! cleaned, replaced, emptied or removed. Where that depends on the attribute's Type in the
//! instance's IOD (the combined codes of Table E.1-1; an attribute outside the table that the
//! rule would remove), the walk knows its place in the IOD at every depth ([`Scope`]).

use std::collections::BTreeSet;

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value, C};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;

use super::captured::CaptureSink;
use super::engine::DeidError;
use super::iod::{Place, Type};
use super::options::DeidOption;
use super::outside::{self, OutsideDecision};
use super::private::{self, Creators, PrivateDecision};
use super::profile::{Basic, Decision, Profile};
use super::report::{ActionCounts, TakenAction};
use super::uids::UidPlaceholderKey;
use super::values::{dummy, effective_vr, is_descriptor_vr, reinterpret_un, text_of, text_values};
use super::vocabulary;

/// Sequences nested deeper than this are treated as a malformed file.
const MAX_DEPTH: usize = 32;

/// Patient's Birth Date.
const PATIENT_BIRTH_DATE: u32 = 0x0010_0030;

/// `group << 16 | element`.
pub(crate) fn packed(tag: Tag) -> u32 {
    u32::from(tag.group()) << 16 | u32::from(tag.element())
}

/// Attributes that never pass, whatever the options: command (0000), file meta (0002) and
/// directory (0004) groups, group lengths (which would be wrong after any change), curves
/// (50xx), overlays (60xx: a bitmap cannot be cleaned without reading it, and an Overlay Plane
/// without its Overlay Data is not conformant), Original Attributes Sequence (0400,0561),
/// Digital Signatures Sequence (FFFA,FFFA) and Data Set Trailing Padding (FFFC,FFFC).
fn always_removed(tag: Tag) -> bool {
    let (g, e) = (tag.group(), tag.element());
    matches!(g, 0x0000 | 0x0002 | 0x0004)
        || e == 0x0000
        || (g % 2 == 0 && (0x5000..=0x50FF).contains(&g))
        || (g % 2 == 0 && (0x6000..=0x60FF).contains(&g))
        || matches!((g, e), (0x0400, 0x0561) | (0xFFFA, 0xFFFA) | (0xFFFC, 0xFFFC))
}

/// Where the walk is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope<'p> {
    /// The place in the instance's IOD; `None` when its SOP Class is not in the IOD tables (then
    /// the combined codes take the alternative that conforms whatever the Type, and attributes
    /// outside the table are removed as the rule says).
    pub(crate) place: Option<&'p Place>,
    /// Inside a sequence that Table E.1-1 replaces by a dummy (D): no text is kept as it is,
    /// not even the equipment and code names of [`outside::RETAINED_TEXT`].
    pub(crate) strict: bool,
}

/// What the IOD says of one element at its place.
struct Here {
    /// Its Type (`None`: no IOD data).
    ty: Option<Type>,
    /// The place of its items, when it is a sequence.
    inner: Option<Place>,
    /// The scope's `strict`.
    strict: bool,
}

impl Here {
    fn of(scope: Scope<'_>, tag: Tag) -> Here {
        let (ty, inner) = match scope.place {
            Some(place) => {
                let (ty, inner) = place.attribute(packed(tag));
                (Some(ty), Some(inner))
            }
            None => (None, None),
        };
        Here {
            ty,
            inner,
            strict: scope.strict,
        }
    }

    /// The scope of the element's items; strict from here down when `strict`.
    fn items(&self, strict: bool) -> Scope<'_> {
        Scope {
            place: self.inner.as_ref(),
            strict: self.strict || strict,
        }
    }
}

/// State of one instance's walk.
pub(crate) struct Walker<'a> {
    profile: &'a Profile,
    key: &'a UidPlaceholderKey,
    pub(crate) sink: CaptureSink,
    pub(crate) actions: ActionCounts,
}

impl<'a> Walker<'a> {
    /// A walk with nothing captured or counted yet.
    pub(crate) fn new(profile: &'a Profile, key: &'a UidPlaceholderKey) -> Walker<'a> {
        Walker {
            profile,
            key,
            sink: CaptureSink::default(),
            actions: ActionCounts::default(),
        }
    }

    /// De-identify a dataset (the top level, or a sequence item at `path`) in `scope`.
    pub(crate) fn dataset(
        &mut self,
        dataset: InMemDicomObject,
        path: &mut Vec<(u32, u32)>,
        scope: Scope<'_>,
    ) -> Result<InMemDicomObject, DeidError> {
        if path.len() > MAX_DEPTH {
            return Err(DeidError::Malformed {
                reason: format!("sequences are nested more than {MAX_DEPTH} levels deep"),
            });
        }
        let elements: Vec<InMemElement> = dataset.into_iter().collect();
        let creators = Creators::collect(elements.iter());
        let mut used_blocks = BTreeSet::new();
        let mut creator_elements = Vec::new();
        let mut out = Vec::with_capacity(elements.len());
        for element in elements {
            let tag = element.tag();
            let element = match tag.group() % 2 {
                0 => reinterpret_un(&element).unwrap_or(element),
                _ => element,
            };
            if always_removed(tag) {
                self.count(tag, TakenAction::Removed);
            } else if tag.group() % 2 == 1 {
                if (0x0010..=0x00FF).contains(&tag.element()) {
                    creator_elements.push(element);
                } else if let Some(kept) = self.private(element, &creators, path, scope)? {
                    used_blocks.insert((tag.group(), (tag.element() >> 8) as u8));
                    out.push(kept);
                }
            } else if let Some(row) = self.profile.rows.standard(packed(tag)) {
                if let Some(kept) = self.table(element, row, path, &Here::of(scope, tag))? {
                    out.push(kept);
                }
            } else if let Some(kept) = self.outside(element, path, &Here::of(scope, tag))? {
                out.push(kept);
            }
        }
        for creator in creator_elements {
            let tag = creator.tag();
            if used_blocks.contains(&(tag.group(), tag.element() as u8)) {
                self.count(tag, TakenAction::PrivateKept);
                out.push(creator);
            } else {
                self.count(tag, TakenAction::PrivateRemoved);
            }
        }
        Ok(InMemDicomObject::from_element_iter(out))
    }

    fn count(&mut self, tag: Tag, action: TakenAction) {
        self.actions.add(packed(tag), action);
    }

    fn table(
        &mut self,
        element: InMemElement,
        row: usize,
        path: &mut Vec<(u32, u32)>,
        here: &Here,
    ) -> Result<Option<InMemElement>, DeidError> {
        let tag = element.tag();
        let vr = effective_vr(&element);
        if path.is_empty()
            && packed(tag) == PATIENT_BIRTH_DATE
            && self
                .profile
                .options()
                .contains(DeidOption::RetainPatientCharacteristics)
        {
            if let Some(text) = text_of(element.value()).filter(|t| !t.is_empty()) {
                self.sink.birth_date(text);
                self.count(tag, TakenAction::CapturedForSteward);
            }
        }
        match self.profile.decision(row) {
            Decision::Keep => {
                self.count(tag, TakenAction::Kept);
                self.keep(element, path, here.items(false)).map(Some)
            }
            Decision::Basic(basic) => self.basic(element, basic, vr, path, here),
            Decision::Clean(fallback) => {
                if matches!(element.value(), Value::Sequence(_)) {
                    self.count(tag, TakenAction::Cleaned);
                    return self.recurse(element, path, here.items(false)).map(Some);
                }
                let passes = !here.strict
                    && is_descriptor_vr(vr)
                    && text_of(element.value()).is_some_and(|t| text_values(&t).all(vocabulary::passes));
                if passes {
                    self.count(tag, TakenAction::Cleaned);
                    Ok(Some(element))
                } else {
                    self.basic(element, fallback, vr, path, here)
                }
            }
            Decision::Capture(fallback) => {
                if matches!(vr, VR::DA | VR::DT | VR::TM) {
                    if let Some(text) = text_of(element.value()).filter(|t| !t.is_empty()) {
                        self.sink.value(path, packed(tag), vr.to_string(), text);
                        self.count(tag, TakenAction::CapturedForSteward);
                    }
                }
                self.basic(element, fallback, vr, path, here)
            }
        }
    }

    /// Apply a Basic Profile action; a combined code is first resolved by the attribute's Type.
    fn basic(
        &mut self,
        element: InMemElement,
        basic: Basic,
        vr: VR,
        path: &mut Vec<(u32, u32)>,
        here: &Here,
    ) -> Result<Option<InMemElement>, DeidError> {
        let basic = match basic {
            Basic::Choice(choice) => choice.resolve(here.ty),
            other => other,
        };
        let tag = element.tag();
        let is_sequence = matches!(element.value(), Value::Sequence(_));
        if vr == VR::SQ && !is_sequence {
            // A malformed element (SQ header, no items): nothing sensible to write.
            self.count(tag, TakenAction::Removed);
            return Ok(None);
        }
        let out = match basic {
            Basic::Remove => None,
            Basic::Empty if is_sequence => Some(sequence(tag, Vec::new())),
            Basic::Empty => Some(DataElement::new(tag, vr, PrimitiveValue::Empty)),
            // An empty original stays empty: a dummy would only add a false value.
            Basic::Dummy if is_sequence && is_empty(&element) => Some(sequence(tag, Vec::new())),
            // A sequence replaced by a dummy keeps its items, every value in them a dummy or
            // removed as their own rules and Types say (no text kept as it is), references
            // replaced like every UID: valid items, never an empty one where the IOD requires
            // contents, and nothing of the original but its structure and its UIDs' links.
            Basic::Dummy if is_sequence => {
                self.count(tag, TakenAction::Dummy);
                return self.recurse(element, path, here.items(true)).map(Some);
            }
            Basic::Uid if !is_sequence => return Ok(Some(self.replace_uids(&element))),
            Basic::Dummy if vr == VR::UI => return Ok(Some(self.replace_uids(&element))),
            Basic::Dummy if is_empty(&element) => Some(DataElement::new(tag, vr, PrimitiveValue::Empty)),
            Basic::Dummy => Some(DataElement::new(tag, vr, dummy(vr))),
            Basic::Uid => None,
            Basic::RecurseReplacingUids if is_sequence => {
                self.count(tag, TakenAction::Cleaned);
                return self.recurse(element, path, here.items(false)).map(Some);
            }
            Basic::RecurseReplacingUids => None,
            // Resolved above; a choice never resolves to another choice.
            Basic::Choice(_) => None,
        };
        let action = match &out {
            None => TakenAction::Removed,
            Some(e) if is_empty(e) => TakenAction::Emptied,
            Some(_) => TakenAction::Dummy,
        };
        self.count(tag, action);
        Ok(out)
    }

    /// Replace every value of a UI element by its placeholder, recording the pairs.
    fn replace_uids(&mut self, element: &InMemElement) -> InMemElement {
        let (replaced, any) = self.placeholders(element);
        let action = if any {
            TakenAction::UidReplaced
        } else {
            TakenAction::Emptied
        };
        self.count(element.tag(), action);
        replaced
    }

    /// Every value of a UI element replaced by its placeholder (the pairs recorded), and whether
    /// there was any (else the element is emptied).
    fn placeholders(&mut self, element: &InMemElement) -> (InMemElement, bool) {
        let tag = element.tag();
        let text = text_of(element.value()).unwrap_or_default();
        let mut values: C<String> = C::new();
        let mut replaced = false;
        for original in text_values(&text) {
            if original.is_empty() {
                values.push(String::new());
            } else {
                let placeholder = self.key.placeholder(original);
                self.sink.uid(&placeholder, original);
                values.push(placeholder);
                replaced = true;
            }
        }
        if replaced {
            (DataElement::new(tag, VR::UI, PrimitiveValue::Strs(values)), true)
        } else {
            (DataElement::new(tag, VR::UI, PrimitiveValue::Empty), false)
        }
    }

    /// Keep an element; a sequence keeps its items, cleaned.
    fn keep(
        &mut self,
        element: InMemElement,
        path: &mut Vec<(u32, u32)>,
        items: Scope<'_>,
    ) -> Result<InMemElement, DeidError> {
        if matches!(element.value(), Value::Sequence(_)) {
            self.recurse(element, path, items)
        } else {
            Ok(element)
        }
    }

    /// Clean every item of a sequence element, the items being at `items`.
    fn recurse(
        &mut self,
        element: InMemElement,
        path: &mut Vec<(u32, u32)>,
        items: Scope<'_>,
    ) -> Result<InMemElement, DeidError> {
        let tag = element.tag();
        let list = match element.into_value() {
            Value::Sequence(seq) => seq.into_items(),
            _ => C::new(),
        };
        let mut cleaned = Vec::with_capacity(list.len());
        for (i, item) in list.into_iter().enumerate() {
            path.push((packed(tag), u32::try_from(i).unwrap_or(u32::MAX)));
            let result = self.dataset(item, path, items);
            path.pop();
            cleaned.push(result?);
        }
        Ok(sequence(tag, cleaned))
    }

    fn private(
        &mut self,
        element: InMemElement,
        creators: &Creators,
        path: &mut Vec<(u32, u32)>,
        scope: Scope<'_>,
    ) -> Result<Option<InMemElement>, DeidError> {
        let tag = element.tag();
        let retain = self.profile.options().contains(DeidOption::RetainSafePrivate);
        match private::decide(&self.profile.safe_private, retain, creators, &element) {
            PrivateDecision::Remove => {
                self.count(tag, TakenAction::PrivateRemoved);
                Ok(None)
            }
            PrivateDecision::Keep(safe) => {
                self.count(tag, TakenAction::PrivateKept);
                let is_uid = element.vr() == VR::UI || safe.vr == "UI";
                if is_uid && !self.profile.options().contains(DeidOption::RetainUids) {
                    return Ok(Some(self.replace_uids(&element)));
                }
                // No IOD describes what a private sequence holds.
                let items = Scope {
                    place: scope.place.map(|_| &NOWHERE),
                    strict: scope.strict,
                };
                self.keep(element, path, items).map(Some)
            }
        }
    }

    fn outside(
        &mut self,
        element: InMemElement,
        path: &mut Vec<(u32, u32)>,
        here: &Here,
    ) -> Result<Option<InMemElement>, DeidError> {
        let tag = element.tag();
        match outside::decide(&element, here.strict) {
            OutsideDecision::Keep => {
                self.count(tag, TakenAction::OutsideTableKept);
                Ok(Some(element))
            }
            OutsideDecision::Describe => {
                let passes = text_of(element.value()).is_none_or(|t| text_values(&t).all(vocabulary::passes));
                if passes {
                    self.count(tag, TakenAction::OutsideTableKept);
                    Ok(Some(element))
                } else {
                    self.count(tag, TakenAction::RetainedTextReplaced);
                    let vr = effective_vr(&element);
                    Ok(Some(DataElement::new(tag, vr, dummy(vr))))
                }
            }
            OutsideDecision::Recurse => {
                self.count(tag, TakenAction::OutsideTableKept);
                self.recurse(element, path, here.items(false)).map(Some)
            }
            OutsideDecision::Remove => {
                // Removed unless the IOD requires the attribute here: then emptied (Type 2) or
                // a dummy (Type 1), which carries nothing of the original either.
                let vr = effective_vr(&element);
                match here.ty {
                    Some(ty) if ty.needs_value() && !is_empty(&element) && vr == VR::UI => {
                        // A UID that is not one: its placeholder is the dummy that keeps links.
                        self.count(tag, TakenAction::OutsideTableDummy);
                        Ok(Some(self.placeholders(&element).0))
                    }
                    Some(ty) if ty.needs_value() && !is_empty(&element) && vr != VR::SQ => {
                        self.count(tag, TakenAction::OutsideTableDummy);
                        Ok(Some(DataElement::new(tag, vr, dummy(vr))))
                    }
                    Some(ty) if (ty.needs_value() || ty.needs_presence()) && vr != VR::SQ => {
                        self.count(tag, TakenAction::OutsideTableEmptied);
                        Ok(Some(DataElement::new(tag, vr, PrimitiveValue::Empty)))
                    }
                    _ => {
                        self.count(tag, TakenAction::OutsideTableRemoved);
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// The place of a private sequence's items in a known IOD: nothing is required there.
static NOWHERE: Place = Place::EMPTY;

/// Whether an element has no value: zero length, or a sequence without items.
fn is_empty(element: &InMemElement) -> bool {
    match element.value() {
        Value::Primitive(PrimitiveValue::Empty) => true,
        Value::Primitive(p) => p.to_str().trim_matches(['\0', ' ', '\\']).is_empty(),
        Value::Sequence(seq) => seq.items().is_empty(),
        Value::PixelSequence(_) => false,
    }
}

/// A sequence element of undefined length (its items are rebuilt, so no stored length is kept).
fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(
        tag,
        VR::SQ,
        Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
    )
}
