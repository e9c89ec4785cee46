from pipelines import context


def test_session_has_bigdl_engine_and_reuses_itself(spark):
    assert spark.sparkContext.master == "local[2]"
    assert context.total_cores(spark) == 2
    again = context.get_or_create(conf={"spark.sql.shuffle.partitions": "4"})
    assert again.sparkContext is spark.sparkContext
    jars = spark.sparkContext.getConf().get("spark.jars")
    assert "bigdl-dllib" in jars


def test_local_jvm_gets_the_mkl_code_path_of_this_cpu(spark):
    import os

    # The factory put it in this process's environment before the JVM started (unless set by the user).
    expected = os.environ.get("MKL_DEBUG_CPU_TYPE")
    if context.cpu_vendor() == "AuthenticAMD" and "MKL_DEBUG_CPU_TYPE" not in os.environ:
        raise AssertionError("MKL_DEBUG_CPU_TYPE was not set for an AMD CPU")
    assert spark.sparkContext._jvm.System.getenv("MKL_DEBUG_CPU_TYPE") == expected
