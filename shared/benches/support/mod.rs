//! A realistic MR instance for the micro-benchmarks: the header a scanner and RIS fill in (names,
//! IDs, dates, UIDs, a reference sequence, vendor-private tags) and 256×256 16-bit pixels.
//! Shared by `shared/benches` and `central/benches` (included by path: neither crate may depend on
//! the fixtures crate, which depends on both).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

/// The Part 10 bytes of one MR instance of `rows`×`rows` pixels.
pub fn mr_instance(rows: u16) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    let text = [
        (tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
        (tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\M\\ND"),
        (tags::INSTANCE_CREATION_DATE, VR::DA, "20240312"),
        (tags::INSTANCE_CREATION_TIME, VR::TM, "101512"),
        (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.4"),
        (tags::SOP_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.10.999.1.2.3.4.5.6"),
        (tags::STUDY_DATE, VR::DA, "20240312"),
        (tags::SERIES_DATE, VR::DA, "20240312"),
        (tags::ACQUISITION_DATE, VR::DA, "20240312"),
        (tags::CONTENT_DATE, VR::DA, "20240312"),
        (tags::STUDY_TIME, VR::TM, "100000"),
        (tags::SERIES_TIME, VR::TM, "100500"),
        (tags::ACQUISITION_TIME, VR::TM, "100600.102500"),
        (tags::CONTENT_TIME, VR::TM, "100602.102500"),
        (tags::ACCESSION_NUMBER, VR::SH, "A20240312001"),
        (tags::MODALITY, VR::CS, "MR"),
        (tags::MANUFACTURER, VR::LO, "SIEMENS"),
        (tags::INSTITUTION_NAME, VR::LO, "Universitaetsklinikum Musterstadt"),
        (tags::INSTITUTION_ADDRESS, VR::ST, "Musterstrasse 1, 12345 Musterstadt"),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN, "Meier^Hans^^Dr. med."),
        (tags::STATION_NAME, VR::SH, "MRC40712"),
        (tags::STUDY_DESCRIPTION, VR::LO, "MRT Schaedel nativ und KM"),
        (tags::SERIES_DESCRIPTION, VR::LO, "T1 SE tra KM"),
        (tags::PERFORMING_PHYSICIAN_NAME, VR::PN, "Schulz^Anna"),
        (tags::OPERATORS_NAME, VR::PN, "Weber^Tom"),
        (tags::MANUFACTURER_MODEL_NAME, VR::LO, "Skyra"),
        (tags::PATIENT_NAME, VR::PN, "Mustermann^Erika"),
        (tags::PATIENT_ID, VR::LO, "PID-00424242"),
        (tags::PATIENT_BIRTH_DATE, VR::DA, "19640812"),
        (tags::PATIENT_SEX, VR::CS, "F"),
        (tags::PATIENT_AGE, VR::AS, "059Y"),
        (tags::PATIENT_WEIGHT, VR::DS, "68"),
        (tags::BODY_PART_EXAMINED, VR::CS, "HEAD"),
        (tags::SCANNING_SEQUENCE, VR::CS, "SE"),
        (tags::SEQUENCE_VARIANT, VR::CS, "SK\\SP"),
        (tags::MR_ACQUISITION_TYPE, VR::CS, "2D"),
        (tags::SLICE_THICKNESS, VR::DS, "5"),
        (tags::REPETITION_TIME, VR::DS, "550"),
        (tags::ECHO_TIME, VR::DS, "9.1"),
        (tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "3"),
        (tags::DEVICE_SERIAL_NUMBER, VR::LO, "45123"),
        (tags::SOFTWARE_VERSIONS, VR::LO, "syngo MR E11"),
        (tags::PROTOCOL_NAME, VR::LO, "T1 SE tra KM"),
        (tags::PATIENT_POSITION, VR::CS, "HFS"),
        (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.10.999.1.2.3"),
        (tags::SERIES_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.10.999.1.2.3.4"),
        (tags::STUDY_ID, VR::SH, "1"),
        (tags::SERIES_NUMBER, VR::IS, "5"),
        (tags::INSTANCE_NUMBER, VR::IS, "12"),
        (tags::IMAGE_POSITION_PATIENT, VR::DS, "-120\\-130\\12.5"),
        (tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"),
        (
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.999.1.2.3.9",
        ),
        (tags::SLICE_LOCATION, VR::DS, "12.5"),
        (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        (tags::PIXEL_SPACING, VR::DS, "0.9375\\0.9375"),
        (tags::WINDOW_CENTER, VR::DS, "600"),
        (tags::WINDOW_WIDTH, VR::DS, "1200"),
        (Tag(0x0019, 0x0010), VR::LO, "SIEMENS MR HEADER"),
        (Tag(0x0019, 0x1008), VR::CS, "IMAGE NUM 4"),
        (Tag(0x0029, 0x0010), VR::LO, "SIEMENS CSA HEADER"),
        (Tag(0x0029, 0x1020), VR::LO, "Mustermann Erika PID-00424242"),
    ];
    for (tag, vr, value) in text {
        put(&mut obj, tag, vr, value);
    }
    let mut item = InMemDicomObject::new_empty();
    put(
        &mut item,
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        "1.2.840.10008.5.1.4.1.1.4",
    );
    put(
        &mut item,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.10.999.1.2.3.4.5.5",
    );
    obj.put(DataElement::new(
        tags::REFERENCED_IMAGE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    for (tag, value) in [
        (tags::SAMPLES_PER_PIXEL, 1u16),
        (tags::ROWS, rows),
        (tags::COLUMNS, rows),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 12),
        (tags::HIGH_BIT, 11),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    let n = usize::from(rows) * usize::from(rows);
    let pixels: Vec<u16> = (0..n).map(|i| ((i * 7 + i / 256 * 3) % 1024) as u16).collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .implementation_class_uid("1.2.826.0.1.3680043.10.999.0.1"),
        )
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}
