from pipelines import context


def test_session_has_bigdl_engine_and_reuses_itself(spark):
    assert spark.sparkContext.master == "local[2]"
    assert context.total_cores(spark) == 2
    again = context.get_or_create(conf={"spark.sql.shuffle.partitions": "4"})
    assert again.sparkContext is spark.sparkContext
    jars = spark.sparkContext.getConf().get("spark.jars")
    assert "bigdl-dllib" in jars
