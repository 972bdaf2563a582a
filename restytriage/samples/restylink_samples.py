"""The two RestyLink deliveries end to end, as an analyst receives them: the flagship demo samples.

2022 wave: a ZIP holding a shortcut named like a PDF plus a hidden folder `_` with the Word template
and the decoy PDF; the shortcut's cmd.exe copies the template into Word's STARTUP folder (T1137.001)
and opens the decoy. Earlier wave: a ZIP holding an ISO whose program, named like a PDF, side-loads a
hidden UPX-packed Go DLL named version.dll. Every part is one of the inert replicas built elsewhere
in this package; nothing here can run.
"""

from __future__ import annotations

from restytriage.samples import Sample, iso_writer
from restytriage.samples.archive_samples import zip_files
from restytriage.samples.lnk_samples import restylink_shortcut
from restytriage.samples.office_samples import restylink_template
from restytriage.samples.pdf_samples import decoy_pdf
from restytriage.samples.pe_samples import prebuilt


def restylink_invoice_zip() -> bytes:
    return zip_files(
        [
            ("seminar_programme.pdf.lnk", restylink_shortcut()),
            ("_/~$seminar.dot", restylink_template()),
            ("_/seminar_programme.pdf", decoy_pdf()),
        ],
        folders=("_",),
    )


def restylink_wave1_zip() -> bytes:
    image = iso_writer.build(
        [
            iso_writer.IsoFile("Seminar_Programme.pdf.exe", prebuilt("c_sideload_host.exe")),
            iso_writer.IsoFile("version.dll", prebuilt("go_stager.upx.dll"), hidden=True),
        ],
        volume_id="SEMINAR",
        application="IMGBURN V2.5.8.0 - THE ULTIMATE IMAGE BURNER!",
    )
    return zip_files([("Seminar_Programme.iso", image)])


SAMPLES = [
    Sample(
        name="restylink_invoice.zip",
        build=restylink_invoice_zip,
        imitates="RestyLink 2022 delivery: ZIP with a PDF-named shortcut, a hidden folder holding the Word "
        "template it copies into Word STARTUP, and the decoy PDF it opens",
        verdict="malicious",
        techniques=("T1137.001", "T1036.007", "T1059.003", "T1059.005", "T1105", "T1204.002"),
        findings=(
            "zip.delivers_shortcut",
            "names.double_extension",
            "lnk.office_template_drop",
            "lnk.decoy_document",
            "lnk.sigma_high",
            "ole.template",
            "ole.autoexec",
            "ole.template_macro_payload",
            "pdf.decoy",
            "yara.match_critical",
        ),
        facts=(
            ("writes", "%APPDATA%\\Microsoft\\Word\\STARTUP\\~$seminar.dot"),
            ("auto-exec", "AutoExec"),
            ("code page", "932"),
            ("MAC", "00:0c:29:5a:1b:2c"),
        ),
    ),
    Sample(
        name="restylink_wave1.zip",
        build=restylink_wave1_zip,
        imitates="earlier RestyLink wave: ZIP holding an ISO whose PDF-named program side-loads a hidden "
        "UPX-packed Go downloader DLL named version.dll",
        verdict="malicious",
        techniques=("T1553.005", "T1564.001", "T1574.001", "T1027.002", "T1036.007", "T1071.001", "T1105"),
        findings=(
            "zip.delivers_disk_image",
            "iso.hidden_executable",
            "iso.delivers_executable",
            "pe.sideload_host_windows_dll",
            "pe.sideload_dll_name",
            "upx.packed",
            "golang.go_binary",
            "golang.loader_functions",
            "cobaltstrike.stager_uri",
        ),
        absent=("upx.not_unpacked",),
        facts=(
            ("Go version", "go1.23"),
            ("Go module", "github.com/restylink-replica/stager"),
            ("Go functions", "main.fetchStage"),
            ("packer", "unpacked"),
        ),
    ),
]
