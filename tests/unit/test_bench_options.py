"""The distributed benchmark's --conf reaches both peers' applications."""

from bench import distributed_training as bench


def test_conf_settings_reach_the_worker_and_its_spark_conf():
    java = "spark.executor.extraJavaOptions=-XX:TieredStopAtLevel=1 -Dx=a=b"
    args = bench.parse_args(["--conf", java, "--conf", "spark.locality.wait=0"])
    command = bench.worker_command("bigdl", 2, args)
    assert f"--conf={java}" in command and "--conf=spark.locality.wait=0" in command
    worker = bench.parse_args(command[command.index("--worker") :])
    conf = bench.cluster_conf(worker)
    assert conf["spark.executor.extraJavaOptions"] == "-XX:TieredStopAtLevel=1 -Dx=a=b"
    assert conf["spark.locality.wait"] == "0" and conf["spark.cores.max"] == "2"
    assert "spark.locality.wait" not in bench.cluster_conf(bench.parse_args([]))
