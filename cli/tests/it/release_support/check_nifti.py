"""Checks every NIfTI of a BIDS release against the DICOM series it was converted from.

Usage: check_nifti.py BIDS_ROOT ARCHIVE_DIR ROWS COLUMNS SLICES
For each converted series listed in sourcedata/series.tsv: the image's shape is the fixture's
(rows, columns, slices) in some axis order, and at the four corners and the centre of every DICOM
slice the NIfTI voxel at that point in space (the NIfTI affine, RAS) holds the DICOM pixel value
(the DICOM geometry, LPS): shape, voxel size, orientation and flips all right. Prints one line per
image, then "ok N".
"""
import csv
import os
import sys

import nibabel
import numpy as np
import pydicom

root, archive, rows, columns, slices = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])

index = {}
with open(os.path.join(archive, "index.csv"), newline="") as f:
    for r in csv.DictReader(f):
        index.setdefault(r["series_uid"], []).append(r["path"])

checked = 0
with open(os.path.join(root, "sourcedata", "series.tsv"), newline="") as f:
    for s in csv.DictReader(f, delimiter="\t"):
        if s["outcome"] != "converted":
            continue
        niftis = [p for p in s["files"].split() if p.endswith(".nii.gz")]
        assert len(niftis) == 1, s
        img = nibabel.load(os.path.join(root, niftis[0]))
        data = np.asanyarray(img.dataobj)
        assert sorted(data.shape) == sorted([rows, columns, slices]), (niftis[0], data.shape)
        to_voxel = np.linalg.inv(img.affine)
        for path in index[s["series_uid"]]:
            ds = pydicom.dcmread(os.path.join(archive, path))
            pixels = ds.pixel_array
            ipp = np.array([float(v) for v in ds.ImagePositionPatient])
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            row_dir, col_dir = iop[:3], iop[3:]
            dr, dc = (float(v) for v in ds.PixelSpacing)
            for r, c in [(0, 0), (0, columns - 1), (rows - 1, 0), (rows - 1, columns - 1), (rows // 2, columns // 2)]:
                lps = ipp + c * dc * row_dir + r * dr * col_dir
                ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
                ijk = to_voxel @ ras
                voxel = np.round(ijk[:3]).astype(int)
                assert np.allclose(ijk[:3], voxel, atol=1e-3), (niftis[0], path, ijk)
                got = data[tuple(voxel)]
                assert got == pixels[r, c], (niftis[0], path, (r, c), got, pixels[r, c])
        print(niftis[0], data.shape, "".join(nibabel.aff2axcodes(img.affine)))
        checked += 1
print("ok", checked)
