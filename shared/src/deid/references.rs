//! Consistency of the Common Instance Reference module after de-identification: its Referenced
//! Series Sequence and Studies Containing Other Referenced Instances Sequence list the instances
//! this instance references elsewhere (Type 1C: "required if this Instance contains references
//! to other SOP Instances"). When PS3.15 removed or emptied every such reference (X/Z/U* on a
//! Type 2 or 3 sequence), the lists refer to nothing and the instance no longer conforms; they go
//! too.

use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;

use super::report::{ActionCounts, TakenAction};
use super::walk::packed;

/// The Common Instance Reference module's lists.
const LISTS: [Tag; 2] = [Tag(0x0008, 0x1115), Tag(0x0008, 0x1200)];
/// Referenced SOP Instance UID: how an instance references another.
const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
/// Sequences whose references are not to composite instances the lists cover: a Performed
/// Procedure Step, a Study (Detached Study Management), the de-identification method's codes.
const NOT_INSTANCE_REFERENCES: [Tag; 3] = [Tag(0x0008, 0x1111), Tag(0x0008, 0x1110), Tag(0x0012, 0x0064)];

/// Removes the Common Instance Reference lists from the top level of `dataset` when nothing else
/// in it references an instance any more.
pub(crate) fn prune_orphan_lists(dataset: &mut InMemDicomObject, actions: &mut ActionCounts) {
    if !LISTS.iter().any(|&t| dataset.get(t).is_some()) {
        return;
    }
    let references = dataset
        .iter()
        .filter(|e| !LISTS.contains(&e.tag()) && !NOT_INSTANCE_REFERENCES.contains(&e.tag()))
        .any(|e| match e.value() {
            Value::Sequence(seq) => seq.items().iter().any(holds_reference),
            _ => false,
        });
    if references {
        return;
    }
    for tag in LISTS {
        if dataset.remove_element(tag) {
            actions.add(packed(tag), TakenAction::OutsideTableRemoved);
        }
    }
}

/// Whether an item, at any depth, holds a Referenced SOP Instance UID.
fn holds_reference(item: &InMemDicomObject) -> bool {
    item.iter().any(|e| {
        e.tag() == REFERENCED_SOP_INSTANCE_UID
            || match e.value() {
                Value::Sequence(seq) => seq.items().iter().any(holds_reference),
                _ => false,
            }
    })
}
