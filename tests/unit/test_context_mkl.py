"""MKL's code path on the CPU the JVM runs on (pure parts of pipelines.context)."""

from pipelines.context import cpu_vendor, mkl_environment


def test_cpu_vendor_reads_proc_cpuinfo_format(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n")
    assert cpu_vendor(str(info)) == "AuthenticAMD"
    assert cpu_vendor(str(tmp_path / "missing")) is None


def test_mkl_is_sent_to_its_avx2_kernels_on_amd_only():
    assert mkl_environment("AuthenticAMD") == {"MKL_DEBUG_CPU_TYPE": "5"}
    assert mkl_environment("GenuineIntel") == {}
    assert mkl_environment(None) == {}
