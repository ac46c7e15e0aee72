//! What PS3.3 requires of an instance's attributes, from the IOD of its SOP Class: the Type
//! (1, 1C, 2, 2C, 3) of an attribute at its place, at any sequence depth. PS3.15's combined
//! action codes (`X/Z/D`, `Z/D`, ...) and pseal's rule for attributes outside Table E.1-1 ask it.
//!
//! The tables are generated from `shared/data/iod/` (PS3.3 as highdicom ships it) into
//! [`super::generated::iod`]. An IOD is a set of modules; the Type of an attribute in an instance
//! is the strongest any of the IOD's modules gives it at that place, whatever the module's usage
//! (a Conditional or User Option module whose attribute the instance holds is taken to be
//! present: keeping a dummy or an empty value where removing would have been allowed costs no
//! privacy, removing where the attribute is required breaks the instance).

use super::generated::iod::{IODS, NODES, SOP_CLASSES};

/// An attribute's Type, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Type {
    /// Type 3 (optional), or not in the IOD at that place.
    T3,
    /// Type 2C: present (possibly empty) when its condition holds.
    T2C,
    /// Type 2: present, possibly empty.
    T2,
    /// Type 1C: present with a value when its condition holds.
    T1C,
    /// Type 1: present with a value.
    T1,
}

impl Type {
    /// Whether a value is required (1, 1C): removing or emptying the attribute breaks the IOD.
    pub(crate) fn needs_value(self) -> bool {
        matches!(self, Type::T1 | Type::T1C)
    }

    /// Whether the attribute must be present, possibly empty (2, 2C).
    pub(crate) fn needs_presence(self) -> bool {
        matches!(self, Type::T2 | Type::T2C)
    }
}

/// One attribute of a node: `(tag, Type, node of its items or [`NONE`])`.
pub(crate) type Edge = (u32, Type, u16);

/// No item contents recorded (not a sequence, or nothing required inside).
pub(crate) const NONE: u16 = u16::MAX;

/// The IOD of a SOP Class, by the generated tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Iod {
    name: &'static str,
    roots: &'static [u16],
}

impl Iod {
    /// The IOD of `sop_class_uid`, or `None` for a SOP Class the tables do not hold.
    pub(crate) fn of(sop_class_uid: &str) -> Option<Iod> {
        let i = SOP_CLASSES.binary_search_by(|&(uid, _)| uid.cmp(sop_class_uid)).ok()?;
        let &(_, iod) = SOP_CLASSES.get(i)?;
        let &(name, roots) = IODS.get(usize::from(iod))?;
        Some(Iod { name, roots })
    }

    /// The IOD's name as PS3.3 (through highdicom) spells it, e.g. `mr-image`.
    pub(crate) fn name(self) -> &'static str {
        self.name
    }

    /// The top level of an instance of this IOD.
    pub(crate) fn top(self) -> Place {
        Place {
            nodes: self.roots.to_vec(),
        }
    }
}

/// A place in an instance (the top level, or the items of a sequence at some path): the nodes of
/// every module that has something required there. No nodes: nothing is required there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Place {
    nodes: Vec<u16>,
}

impl Place {
    /// Nowhere in the IOD: nothing is required (a private sequence's items, a sequence the IOD
    /// does not hold).
    pub(crate) const EMPTY: Place = Place { nodes: Vec::new() };

    /// The Type of `tag` (`group << 16 | element`) here, and the place of its items.
    pub(crate) fn attribute(&self, tag: u32) -> (Type, Place) {
        let mut strongest = Type::T3;
        let mut inner = Vec::new();
        for &node in &self.nodes {
            let Some(edges) = NODES.get(usize::from(node)) else {
                continue;
            };
            if let Ok(i) = edges.binary_search_by_key(&tag, |&(t, _, _)| t) {
                let (_, ty, child) = edges[i];
                strongest = strongest.max(ty);
                if child != NONE && !inner.contains(&child) {
                    inner.push(child);
                }
            }
        }
        (strongest, Place { nodes: inner })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    const MR: &str = "1.2.840.10008.5.1.4.1.1.4";

    #[test]
    fn mr_image_types_at_depth() {
        let iod = Iod::of(MR).expect("MR Image Storage is in the tables");
        assert_eq!(iod.name(), "mr-image");
        let top = iod.top();
        // Frame of Reference: Position Reference Indicator is Type 2.
        assert_eq!(top.attribute(0x0020_1040).0, Type::T2);
        // General Series: Referenced Performed Procedure Step Sequence is Type 3, with Type 1
        // references inside.
        let (pps, items) = top.attribute(0x0008_1111);
        assert_eq!(pps, Type::T3);
        assert_eq!(items.attribute(0x0008_1150).0, Type::T1);
        assert_eq!(items.attribute(0x0008_1155).0, Type::T1);
        // General Equipment's Institution Name is Type 3 in MR; Patient ID Type 2.
        assert_eq!(top.attribute(0x0008_0080).0, Type::T3);
        assert_eq!(top.attribute(0x0010_0020).0, Type::T2);
        // Not in the IOD at all, and nothing below it.
        let (absent, below) = top.attribute(0x0040_A730);
        assert_eq!(absent, Type::T3);
        assert_eq!(below, Place::default());
    }

    #[test]
    fn enhanced_mr_functional_groups_are_reached() {
        let top = Iod::of("1.2.840.10008.5.1.4.1.1.4.1").expect("Enhanced MR").top();
        let (shared, groups) = top.attribute(0x5200_9229);
        assert_eq!(shared, Type::T1);
        // Pixel Measures Sequence > Pixel Spacing is Type 1C.
        let (_, measures) = groups.attribute(0x0028_9110);
        assert_eq!(measures.attribute(0x0028_0030).0, Type::T1C);
        // Enhanced General Equipment makes the device serial number Type 1 here (Type 3 in MR).
        assert_eq!(top.attribute(0x0018_1000).0, Type::T1);
    }

    #[test]
    fn unknown_classes_are_not_guessed() {
        assert!(Iod::of("1.2.3.4").is_none());
        assert!(Iod::of("").is_none());
    }
}
