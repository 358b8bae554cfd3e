"""Network import/export: CSV, JSON, VTK XML and legacy, Secomb files, HDF5; error messages."""

import base64
import json
import os
import struct
import zlib

import h5py
import numpy as np
import pytest

from nanosim.vasculature import (
    BCKind,
    NetworkError,
    NetworkFileError,
    VesselNetwork,
    WallType,
    binary_tree,
    load_network_h5,
    read_network,
    save_network_h5,
    straight_vessel,
    write_network_csv,
    write_network_json,
    write_secomb,
    write_vtp,
)

MMHG_PA = 133.322387415  # 1 mmHg in Pa (definition: 13.5951 g/cm³ × 9.80665 m/s² × 1 mm)
NL_PER_MIN = 1e-12 / 60.0  # 1 nl/min in m³/s
# Files in µm or mmHg are converted by one multiplication: a few ulp of difference, far below 1e-13.
RTOL_UNITS = 1e-13

ARRAYS = ("node_pos_m", "seg_nodes", "seg_radius_m", "seg_length_m", "seg_wall", "seg_pore_radius_m",
          "seg_permeability_m_per_s", "bc_nodes", "bc_kind", "bc_value", "bc_haematocrit")


def assert_same(a: VesselNetwork, b: VesselNetwork, rtol=0.0, skip=()):
    for name in ARRAYS:
        if name in skip:
            continue
        x, y = getattr(a, name), getattr(b, name)
        if rtol:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.fixture
def net():
    """A tree with every per-segment array non-trivial and both kinds of boundary condition."""
    t = binary_tree(3, 40e-6, 1e-3, seed=2, fraction_jitter=0.15)
    m, k = t.n_segments, len(t.bc_nodes)
    kind = np.zeros(k, np.uint8)
    kind[1] = BCKind.FLOW
    value = t.bc_value.copy()
    value[1] = -3.25e-13
    return t.with_(seg_wall=np.arange(m) % len(WallType), seg_pore_radius_m=np.linspace(0, 2e-7, m),
                   seg_permeability_m_per_s=np.linspace(1e-9, 1e-7, m), seg_length_m=t.seg_length_m * 1.1,
                   bc_kind=kind, bc_value=value, bc_haematocrit=np.linspace(0.3, 0.5, k))


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------
SECTIONED_CSV = """\
# a tiny Y in micrometres
[nodes]
id,x_um,y_um,z_um
10,0,0,0
11,100,0,0
12,200,50,0
13,200,-50,0

[segments]
id,node_a,node_b,radius_um,wall
1,10,11,8,artery
2,11,12,6,capillary
3,11,13,diameter is below,tumour

[boundary]
node,kind,value_mmHg
10,pressure,30
12,pressure,10
13,pressure,12
"""


def test_csv_sections_in_micrometres_and_mmhg(tmp_path):
    p = tmp_path / "y.csv"
    p.write_text(SECTIONED_CSV.replace("diameter is below", "5"))
    net = read_network(p)
    np.testing.assert_allclose(net.node_pos_m, [[0, 0, 0], [1e-4, 0, 0], [2e-4, 5e-5, 0], [2e-4, -5e-5, 0]],
                               rtol=RTOL_UNITS)
    np.testing.assert_array_equal(net.seg_nodes, [[0, 1], [1, 2], [1, 3]])
    np.testing.assert_allclose(net.seg_radius_m, [8e-6, 6e-6, 5e-6], rtol=RTOL_UNITS)
    np.testing.assert_allclose(net.seg_length_m, [1e-4, np.hypot(1e-4, 5e-5), np.hypot(1e-4, 5e-5)], rtol=RTOL_UNITS)
    np.testing.assert_array_equal(net.seg_wall, [WallType.ARTERY, WallType.CAPILLARY, WallType.TUMOUR])
    np.testing.assert_array_equal(net.bc_nodes, [0, 2, 3])
    np.testing.assert_allclose(net.bc_value, np.array([30, 10, 12]) * MMHG_PA, rtol=RTOL_UNITS)
    np.testing.assert_array_equal(net.bc_haematocrit, 0.45)
    assert net.meta["format"] == "csv"


def test_csv_folder_with_diameters_aliases_and_per_row_units(tmp_path):
    (tmp_path / "nodes.csv").write_text("x_mm,y_mm,z_mm\n0,0,0\n1,0,0\n2,0,0\n")
    (tmp_path / "segments.csv").write_text("from,to,diameter_um,length_mm,pore_radius_nm,permeability_m_per_s\n"
                                           "0,1,20,1.5,100,1e-8\n1,2,10,,,\n")
    (tmp_path / "boundary.csv").write_text("node,kind,value,unit,haematocrit\n0,flow,2.5,nl/min,0.4\n"
                                           "2,pressure,1200,Pa,0.45\n")
    for path in (tmp_path, tmp_path / "segments.csv"):
        net = read_network(path)
        np.testing.assert_allclose(net.seg_radius_m, [10e-6, 5e-6], rtol=RTOL_UNITS)
        np.testing.assert_allclose(net.seg_length_m, [1.5e-3, 1e-3], rtol=RTOL_UNITS)
        np.testing.assert_allclose(net.seg_pore_radius_m, [1e-7, 0.0], rtol=RTOL_UNITS)
        np.testing.assert_array_equal(net.seg_permeability_m_per_s, [1e-8, 0.0])
        np.testing.assert_array_equal(net.bc_kind, [BCKind.FLOW, BCKind.PRESSURE])
        np.testing.assert_allclose(net.bc_value, [2.5 * NL_PER_MIN, 1200.0], rtol=RTOL_UNITS)
        np.testing.assert_array_equal(net.bc_haematocrit, [0.4, 0.45])


def test_csv_round_trip_is_exact(tmp_path, net):
    write_network_csv(net, tmp_path / "net.csv")
    assert_same(net, read_network(tmp_path / "net.csv"))
    write_network_csv(net, tmp_path / "folder")
    assert_same(net, read_network(tmp_path / "folder"))


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------
def test_json_sample(tmp_path):
    doc = {"meta": {"animal": "rat"},
           "nodes": [{"id": "a", "x_um": 0, "y_um": 0, "z_um": 0}, {"id": "b", "x_um": 0, "y_um": 0, "z_um": 250}],
           "segments": [{"node_a": "a", "node_b": "b", "radius_um": 4, "wall": 4}],
           "boundary": [{"node": "a", "kind": "flow", "value_nl_per_min": 1.5},
                        {"node": "b", "kind": 0, "value_Pa": 900, "haematocrit": 0.3}]}
    p = tmp_path / "n.json"
    p.write_text(json.dumps(doc))
    net = read_network(p)
    np.testing.assert_allclose(net.node_pos_m[1], [0, 0, 2.5e-4], rtol=RTOL_UNITS)
    assert net.seg_wall[0] == WallType.SINUSOID
    np.testing.assert_allclose(net.bc_value, [1.5 * NL_PER_MIN, 900.0], rtol=RTOL_UNITS)
    np.testing.assert_array_equal(net.bc_haematocrit, [0.45, 0.3])
    assert net.meta["animal"] == "rat" and net.meta["format"] == "json"


def test_json_round_trip_is_exact_with_meta(tmp_path, net):
    write_network_json(net, tmp_path / "n.json")
    back = read_network(tmp_path / "n.json")
    assert_same(net, back)
    assert back.meta["params"] == net.meta["params"]


# --------------------------------------------------------------------------------------------
# VTK XML PolyData
# --------------------------------------------------------------------------------------------
def _vtp(arrays_xml, points, lines_conn, lines_off, header_attrs=""):
    return f"""<?xml version="1.0"?>
<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian"{header_attrs}>
  <PolyData>
    <Piece NumberOfPoints="{len(points) // 3}" NumberOfVerts="0" NumberOfLines="{len(lines_off)}" NumberOfStrips="0" NumberOfPolys="0">
      {arrays_xml}
      <Points><DataArray type="Float32" NumberOfComponents="3" format="ascii">{' '.join(map(str, points))}</DataArray></Points>
      <Lines>
        <DataArray type="Int32" Name="connectivity" format="ascii">{' '.join(map(str, lines_conn))}</DataArray>
        <DataArray type="Int32" Name="offsets" format="ascii">{' '.join(map(str, lines_off))}</DataArray>
      </Lines>
    </Piece>
  </PolyData>
</VTKFile>
"""


# a poly-line 0-1-2 and a line 1-3, plus an unused point 4; coordinates in µm
POINTS_UM = [0, 0, 0, 10, 0, 0, 20, 0, 0, 10, 10, 0, 99, 99, 99]


def test_vtp_ascii_polyline_with_point_radius_in_micrometres(tmp_path):
    arrays = ('<PointData><DataArray type="Float64" Name="MaximumInscribedSphereRadius" format="ascii">'
              "4 3 2 1 7</DataArray></PointData>")
    p = tmp_path / "c.vtp"
    p.write_text(_vtp(arrays, POINTS_UM, [0, 1, 2, 1, 3], [3, 5]))
    net = read_network(p, length_unit="um", wall="sinusoid")
    assert (net.n_nodes, net.n_segments) == (4, 3)  # the unused point is dropped
    np.testing.assert_array_equal(net.node_degree(), [1, 3, 1, 1])  # the poly-line's middle point joins
    np.testing.assert_allclose(net.seg_radius_m, [3.5e-6, 2.5e-6, 2e-6], rtol=RTOL_UNITS)  # mean of end points
    np.testing.assert_allclose(net.seg_length_m, 1e-5, rtol=1e-6)  # Float32 points: 1e-6 relative
    assert (net.seg_wall == WallType.SINUSOID).all()
    assert net.meta["radius_array"] == "MaximumInscribedSphereRadius"


def _b64_block(data: bytes, compress: bool) -> str:
    """VTK inline binary, UInt32 header, header and data in one base64 stream (VTK spec)."""
    if not compress:
        return base64.b64encode(struct.pack("<I", len(data)) + data).decode()
    comp = zlib.compress(data)
    return base64.b64encode(struct.pack("<4I", 1, len(data), len(data), len(comp)) + comp).decode()


@pytest.mark.parametrize("compress", [False, True])
def test_vtp_binary_cell_radius_named_by_option(tmp_path, compress):
    radius = np.array([5.0, 6.0], "<f4")
    conn = np.array([0, 1, 2, 1, 3], "<i8")
    off = np.array([3, 5], "<i8")
    pts = np.array(POINTS_UM, "<f4")
    comp_attr = ' compressor="vtkZLibDataCompressor"' if compress else ""
    xml = f"""<?xml version="1.0"?>
<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian"{comp_attr}>
<PolyData><Piece NumberOfPoints="5" NumberOfLines="2">
<CellData><DataArray type="Float32" Name="R" format="binary">{_b64_block(radius.tobytes(), compress)}</DataArray></CellData>
<Points><DataArray type="Float32" NumberOfComponents="3" format="binary">{_b64_block(pts.tobytes(), compress)}</DataArray></Points>
<Lines><DataArray type="Int64" Name="connectivity" format="binary">{_b64_block(conn.tobytes(), compress)}</DataArray>
<DataArray type="Int64" Name="offsets" format="binary">{_b64_block(off.tobytes(), compress)}</DataArray></Lines>
</Piece></PolyData></VTKFile>"""
    p = tmp_path / "b.vtp"
    p.write_text(xml)
    net = read_network(p, radius_array="R", length_unit="um")
    np.testing.assert_allclose(net.seg_radius_m, [5e-6, 5e-6, 6e-6], rtol=RTOL_UNITS)  # a cell radius per poly-line
    with pytest.raises(NetworkFileError, match=r"b\.vtp.*no radius array named 'radius'"):
        read_network(p, radius_array="radius")


@pytest.mark.parametrize("encoding, compress", [("ascii", False), ("binary", False), ("binary", True)])
def test_write_vtp_reads_back_the_same_network(tmp_path, net, encoding, compress):
    p = tmp_path / "n.vtp"
    write_vtp(net, p, point_data={"pressure_pa": np.arange(net.n_nodes) * 1.5},
              cell_data={"flow_m3_per_s": np.arange(net.n_segments) * 1e-14}, encoding=encoding, compress=compress)
    assert_same(net, read_network(p))
    assert [f.name for f in tmp_path.iterdir()] == ["n.vtp"]  # no temporary file left behind


def test_write_vtp_point_radius_is_the_largest_at_the_node(tmp_path, net):
    import xml.etree.ElementTree as ET

    p = tmp_path / "n.vtp"
    write_vtp(net, p)
    root = ET.parse(p).getroot()
    arr = root.find(".//PointData/DataArray[@Name='radius_m']")
    node_r = np.array(arr.text.split(), float)
    for i in range(net.n_nodes):
        at = (net.seg_nodes == i).any(axis=1)
        assert node_r[i] == net.seg_radius_m[at].max()


def test_write_vtp_rejects_badly_sized_extra_arrays(tmp_path, net):
    with pytest.raises(NetworkError, match="flow.*one per segment"):
        write_vtp(net, tmp_path / "x.vtp", cell_data={"flow": np.zeros(net.n_segments + 1)})
    with pytest.raises(NetworkError, match="radius_m.*written anyway"):
        write_vtp(net, tmp_path / "x.vtp", point_data={"radius_m": np.zeros(net.n_nodes)})
    assert not (tmp_path / "x.vtp").exists()


# --------------------------------------------------------------------------------------------
# optional: the real VTK library reads our files, and its files read back
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding, compress", [("ascii", False), ("binary", False), ("binary", True)])
def test_vtk_library_reads_write_vtp_output(tmp_path, net, encoding, compress):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    p = tmp_path / "n.vtp"
    write_vtp(net, p, encoding=encoding, compress=compress)
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(p))
    r.Update()
    out = r.GetOutput()
    assert out.GetNumberOfPoints() == net.n_nodes
    assert out.GetNumberOfCells() == out.GetNumberOfLines() == net.n_segments
    np.testing.assert_array_equal(vtk_to_numpy(out.GetCellData().GetArray("radius_m")), net.seg_radius_m)
    np.testing.assert_array_equal(vtk_to_numpy(out.GetPoints().GetData()), net.node_pos_m)
    assert out.GetPointData().GetArray("radius_m") is not None


@pytest.mark.parametrize("mode, compress, header64", [("Binary", True, False), ("Appended", False, True),
                                                      ("Appended", True, False), ("AppendedBase64", True, True)])
def test_vtp_written_by_vtk_library(tmp_path, net, mode, compress, header64):
    vtk = pytest.importorskip("vtk")
    src = tmp_path / "src.vtp"
    write_vtp(net, src)
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(src))
    r.Update()
    w = vtk.vtkXMLPolyDataWriter()
    w.SetInputData(r.GetOutput())
    w.SetFileName(str(tmp_path / "v.vtp"))
    if mode == "Binary":
        w.SetDataModeToBinary()
    else:
        w.SetDataModeToAppended()
        w.SetEncodeAppendedData(mode == "AppendedBase64")
    w.SetCompressorTypeToZLib() if compress else w.SetCompressorTypeToNone()
    w.SetHeaderTypeToUInt64() if header64 else w.SetHeaderTypeToUInt32()
    assert w.Write() == 1
    assert_same(net, read_network(tmp_path / "v.vtp"))


def test_legacy_vtk_written_by_vtk_library(tmp_path, net):
    vtk = pytest.importorskip("vtk")
    write_vtp(net, tmp_path / "src.vtp")
    r = vtk.vtkXMLPolyDataReader()
    r.SetFileName(str(tmp_path / "src.vtp"))
    r.Update()
    w = vtk.vtkPolyDataWriter()
    w.SetInputData(r.GetOutput())
    w.SetFileName(str(tmp_path / "v.vtk"))
    assert w.Write() == 1
    # the legacy ASCII writer prints about 11 significant digits: compare to 1e-9 relative
    assert_same(net, read_network(tmp_path / "v.vtk"), rtol=1e-9)


# --------------------------------------------------------------------------------------------
# legacy VTK, written by hand
# --------------------------------------------------------------------------------------------
LEGACY_3 = """# vtk DataFile Version 3.0
centrelines
ASCII
DATASET POLYDATA
POINTS 5 float
0 0 0  1 0 0  2 0 0
1 1 0  9 9 9
VERTICES 1 2
1 4
LINES 2 7
3 0 1 2
2 1 3
CELL_DATA 3
SCALARS Radius float 1
LOOKUP_TABLE default
0.9 0.25 0.125
POINT_DATA 5
FIELD FieldData 1
other 1 5 float
1 2 3 4 5
"""

LEGACY_51 = """# vtk DataFile Version 5.1
centrelines
ASCII
DATASET POLYDATA
POINTS 4 double
0 0 0 1 0 0 2 0 0 1 1 0
LINES 3 5
OFFSETS vtktypeint64
0 3 5
CONNECTIVITY vtktypeint64
0 1 2 1 3
CELL_DATA 2
SCALARS diameter_um double 1
LOOKUP_TABLE default
0.5 0.25
METADATA
INFORMATION 0

"""


def test_legacy_vtk_version_3_with_vertices_and_cell_radius(tmp_path):
    p = tmp_path / "c.vtk"
    p.write_text(LEGACY_3)
    net = read_network(p, length_unit="mm")
    assert (net.n_nodes, net.n_segments) == (4, 3)
    # the vertex cell comes first in CELL_DATA: line cells take values 2 and 3
    np.testing.assert_allclose(net.seg_radius_m, [0.25e-3, 0.25e-3, 0.125e-3], rtol=RTOL_UNITS)
    np.testing.assert_allclose(net.seg_length_m, [1e-3, 1e-3, 1e-3], rtol=RTOL_UNITS)


def test_legacy_vtk_version_5_1_offsets_and_diameter_in_micrometres(tmp_path):
    p = tmp_path / "c.vtk"
    p.write_text(LEGACY_51)
    net = read_network(p, length_unit="mm")
    np.testing.assert_allclose(net.seg_radius_m, [0.25e-6, 0.25e-6, 0.125e-6], rtol=RTOL_UNITS)
    np.testing.assert_allclose(net.node_pos_m[3], [1e-3, 1e-3, 0], rtol=RTOL_UNITS)


# --------------------------------------------------------------------------------------------
# Secomb network files
# --------------------------------------------------------------------------------------------
SECOMB = """Test network
  150.  160.  140.\tbox dimensions in microns
  10    10    10\t\tnumber of tissue points in x,y,z directions
  100.\t\t\touter bound distance
  10.\t\t\t\tmax. segment length
  4\t\t\t\tnodsegm, max. allowed number of segments per node
  4\t\t\t\ttotal number of segments
 name  type   from   to   diam. rel. flow  hem.
    1    5     21   49  9.0    7.50    0.40
    2    5     49   139  7.0    1.50    0.40
    7    4     49   8  6.0    1.50    0.40
    9    1     8   21  6.0    1.50    0.40
 4                    total number of nodes
name  x     y     z
21\t150\t92\t95
49\t150\t92\t35
139\t110\t92\t35
8\t150\t62\t35
 3\ttotal number of boundary nodes
node bctyp press/flow   HD    PO2    solute 3
 21      0     13.      0.4      50.\t\t1.
 139     2     -1.5     0.4      50.\t\t1.
 8       1     -0.5     0.35     50.\t\t1.
"""


def test_secomb_file(tmp_path):
    p = tmp_path / "network.dat"
    p.write_text(SECOMB)
    net = read_network(p)
    assert (net.n_nodes, net.n_segments) == (4, 3)  # type-1 segment 9 is dropped, as NetFlow does
    np.testing.assert_allclose(net.seg_radius_m, [4.5e-6, 3.5e-6, 3e-6], rtol=RTOL_UNITS)
    np.testing.assert_allclose(net.seg_length_m, [60e-6, 40e-6, 30e-6], rtol=RTOL_UNITS)
    np.testing.assert_array_equal(net.seg_nodes, [[0, 1], [1, 2], [1, 3]])
    np.testing.assert_array_equal(net.bc_nodes, [0, 2, 3])
    np.testing.assert_array_equal(net.bc_kind, [BCKind.PRESSURE, BCKind.FLOW, BCKind.FLOW])
    np.testing.assert_allclose(net.bc_value, [13 * MMHG_PA, -1.5 * NL_PER_MIN, -0.5 * NL_PER_MIN], rtol=RTOL_UNITS)
    np.testing.assert_array_equal(net.bc_haematocrit, [0.4, 0.4, 0.35])
    assert read_network(p, segment_types=(1, 4, 5)).n_segments == 4


def test_secomb_round_trip(tmp_path):
    n = binary_tree(2, 20e-6, 0.5e-3, wall="capillary")
    n = n.with_(bc_kind=np.r_[BCKind.FLOW, n.bc_kind[1:]], bc_value=np.r_[4e-13, n.bc_value[1:]])
    write_secomb(n, tmp_path / "n.dat")
    back = read_network(tmp_path / "n.dat")
    # µm, mmHg and nl/min conversions both ways: agreement to a few ulp
    assert_same(n, back, rtol=RTOL_UNITS)


# --------------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------------
def test_hdf5_round_trip_is_exact_with_units_meta_and_extras(tmp_path, net):
    p = tmp_path / "n.h5"
    q = np.linspace(0, 1e-12, net.n_segments)
    with h5py.File(p, "w") as f:
        save_network_h5(net, f.create_group("vessels"), extra_seg={"flow": (q, "m^3/s")},
                        extra_node={"pressure_pa": np.ones(net.n_nodes)})
    with h5py.File(p, "r") as f:
        g = f["vessels"]
        assert g["node_pos_m"].attrs["units"] == "m"
        assert g["seg_permeability_m_per_s"].attrs["units"] == "m/s"
        assert g["extra_seg/flow"].attrs["units"] == "m^3/s"
        back, seg, node = load_network_h5(g, with_extra=True)
    assert_same(net, back)
    for name in ARRAYS:
        assert getattr(back, name).dtype == getattr(net, name).dtype
    assert back.meta == net.meta
    np.testing.assert_array_equal(seg["flow"], q)
    np.testing.assert_array_equal(node["pressure_pa"], 1.0)
    assert_same(net, read_network(p, group="vessels"))


def test_hdf5_errors_name_file_and_group(tmp_path, net):
    p = tmp_path / "n.h5"
    with h5py.File(p, "w") as f:
        save_network_h5(net, f)
        del f["seg_radius_m"]
        f.create_group("empty")
    with pytest.raises(NetworkFileError, match=r"n\.h5, group '/': dataset 'seg_radius_m' is missing"):
        read_network(p)
    with pytest.raises(NetworkFileError, match=r"n\.h5, group '/empty': not a vessel network"):
        read_network(p, group="empty")
    with pytest.raises(NetworkFileError, match=r"n\.h5, group 'nope': no such group"):
        read_network(p, group="nope")


# --------------------------------------------------------------------------------------------
# error messages: file, line or element, fix
# --------------------------------------------------------------------------------------------
CSV_ERRORS = [
    ("3,11,13,5,tumour,extra", r"line 13: 6 values for 5 columns.*one value per column"),
    ("3,11,99,5,tumour", r"line 13 \(segment 3\): node_b = '99' is not a node id.*add that node"),
    ("3,11,13,0,tumour", r"line 13 \(segment 3\): radius 0\.0 m.*> 0"),
    ("3,11,13,-2,tumour", r"line 13 \(segment 3\): radius -2e-06 m.*> 0"),
    ("2,11,13,5,tumour", r"line 13 \(segment 2\): segment id '2' appears again \(first at line 12"),
    ("3,11,13,abc,tumour", r"line 13: column 'radius_um': 'abc' is not a number"),
    ("3,11,13,5,bone", r"line 13 \(segment 3\): unknown wall type 'bone'"),
    ("3,11,11,5,tumour", r"line 13 \(segment 3\): the segment joins node '11' to itself"),
]


@pytest.mark.parametrize("row, message", CSV_ERRORS)
def test_csv_row_errors_name_file_and_line(tmp_path, row, message):
    p = tmp_path / "bad.csv"
    p.write_text(SECTIONED_CSV.replace("3,11,13,diameter is below,tumour", row))
    with pytest.raises(NetworkFileError, match=r"bad\.csv, " + message):
        read_network(p)


@pytest.mark.parametrize("old, new, message", [
    ("id,node_a,node_b,radius_um,wall", "id,node_a,node_b,radius_um,colour",
     r"line 10: unknown column 'colour' in the segments table: use id, node_a"),
    ("id,node_a,node_b,radius_um,wall", "id,node_a,radius_um,wall", r"line 10: the segments table has no node_b column"),
    ("id,node_a,node_b,radius_um,wall", "id,node_a,node_b,radius_kg,wall", r"line 10: column 'radius_kg'"),
    ("13,200,-50,0", "12,200,-50,0", r"line 7: node id '12' appears again \(first at line 6\)"),
    ("13,pressure,12", "13,pressure,0.5\n13,pressure,1", r"line 20: node '13' already has a boundary condition"),
    ("13,pressure,12", "13,flow,12", r"line 19: a flow condition given in column 'value_mmHg'"),
    ("13,pressure,12", "77,pressure,12", r"line 19: boundary node '77' is not a node id"),
    ("[boundary]", "[boundaries]", r"line 15: unknown section \[boundaries\]"),
    ("11,100,0,0", "11,100,0,0,5", r"line 5: 5 values for 4 columns"),
])
def test_csv_table_errors(tmp_path, old, new, message):
    p = tmp_path / "bad.csv"
    text = SECTIONED_CSV.replace("diameter is below", "5")
    assert old in text
    p.write_text(text.replace(old, new))
    with pytest.raises(NetworkFileError, match=r"bad\.csv, " + message):
        read_network(p)


def test_csv_folder_errors_name_the_table_file(tmp_path):
    (tmp_path / "nodes.csv").write_text("x_m,y_m,z_m\n0,0,0\n1,0,0\n")
    (tmp_path / "segments.csv").write_text("node_a,node_b,radius_m\n0,1,1e-6\n1,2,1e-6\n")
    with pytest.raises(NetworkFileError, match=r"segments\.csv line 3: node_b = '2' is not a node id"):
        read_network(tmp_path)
    os.remove(tmp_path / "nodes.csv")
    with pytest.raises(NetworkFileError, match=r"nodes\.csv: missing"):
        read_network(tmp_path)


def test_json_errors_name_the_element(tmp_path):
    p = tmp_path / "bad.json"
    base = {"nodes": [{"x_m": 0, "y_m": 0, "z_m": 0}, {"x_m": 1e-3, "y_m": 0, "z_m": 0}],
            "segments": [{"node_a": 0, "node_b": 1, "radius_m": 1e-6}, {"node_a": 1, "node_b": 5, "radius_m": 1e-6}]}
    p.write_text(json.dumps(base))
    with pytest.raises(NetworkFileError, match=r"bad\.json, segments\[1\]: node_b = '5' is not a node id"):
        read_network(p)
    base["segments"][1] = {"node_a": 0, "node_b": 1, "radius_m": 0}
    p.write_text(json.dumps(base))
    with pytest.raises(NetworkFileError, match=r"bad\.json, segments\[1\]: radius 0\.0 m"):
        read_network(p)
    base["segments"][1] = {"node_a": 0, "node_b": 1, "r_m": 1}
    p.write_text(json.dumps(base))
    with pytest.raises(NetworkFileError, match=r"bad\.json, segments\[1\]: unknown column 'r_m'"):
        read_network(p)
    p.write_text('{"nodes": [\n{"x_m": 0,}\n]}')
    with pytest.raises(NetworkFileError, match=r"bad\.json, line 2, column \d+: invalid JSON"):
        read_network(p)


def test_secomb_errors_name_the_line(tmp_path):
    p = tmp_path / "net.dat"
    p.write_text(SECOMB.replace("    2    5     49   139  7.0", "    2    5     49   555  7.0"))
    with pytest.raises(NetworkFileError, match=r"net\.dat, line 10 \(segment 2\): node_b = '555' is not a node id"):
        read_network(p)
    p.write_text(SECOMB.replace("139\t110\t92\t35", "139\t110\tninety\t35"))
    with pytest.raises(NetworkFileError, match=r"net\.dat, line 17: column 'y_um': 'ninety' is not a number"):
        read_network(p)
    p.write_text(SECOMB.replace(" 8       1     -0.5", " 8       3     -0.5"))
    with pytest.raises(NetworkFileError, match=r"net\.dat, line 23: bctyp 3"):
        read_network(p)
    p.write_text("\n".join(SECOMB.splitlines()[:14]))
    with pytest.raises(NetworkFileError, match=r"net\.dat, line \d+: .*the file ends inside the node table"):
        read_network(p)


def test_vtk_errors(tmp_path):
    p = tmp_path / "c.vtp"
    arrays = '<CellData><DataArray type="Float64" Name="radius" format="ascii">1 0</DataArray></CellData>'
    p.write_text(_vtp(arrays, POINTS_UM, [0, 1, 2, 1, 3], [3, 5]))
    with pytest.raises(NetworkFileError, match=r"c\.vtp, cell 1: radius 0\.0 m \(from array 'radius'\)"):
        read_network(p)
    p.write_text(_vtp(arrays.replace("1 0", "1 1"), POINTS_UM, [0, 1, 2, 1, 9], [3, 5]))
    with pytest.raises(NetworkFileError, match=r"c\.vtp, cell 1: refers to point 9"):
        read_network(p)
    p.write_text(_vtp("", POINTS_UM, [0, 1, 2, 1, 3], [3, 5]).replace("</Lines>", "</Line>"))
    with pytest.raises(NetworkFileError, match=r"c\.vtp, line \d+: not valid XML"):
        read_network(p)
    q = tmp_path / "c.vtk"
    q.write_text(LEGACY_3.replace("3 0 1 2", "3 0 x 2"))
    with pytest.raises(NetworkFileError, match=r"c\.vtk, line 11: LINES: 'x' is not a number"):
        read_network(q)
    q.write_text(LEGACY_3.replace("ASCII", "BINARY"))
    with pytest.raises(NetworkFileError, match=r"c\.vtk, line 3: .*only ASCII"):
        read_network(q)


def test_unknown_format_and_missing_file(tmp_path):
    p = tmp_path / "net.xyz"
    p.write_text("hello\n")
    with pytest.raises(NetworkFileError, match=r"net\.xyz: cannot tell the format"):
        read_network(p)
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_network(tmp_path / "nothere.csv")


def test_writers_replace_files_atomically(tmp_path):
    net = straight_vessel(1e-3, 5e-6)
    p = tmp_path / "n.json"
    p.write_text("old")
    write_network_json(net, p)
    assert_same(net, read_network(p))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["n.json"]
