package pipelines.ml

import java.io.File
import java.nio.file.{Files, Path, Paths}

import com.intel.analytics.bigdl.dllib.tensor.Tensor
import com.intel.analytics.bigdl.dllib.tensor.TensorNumericMath.TensorNumeric.NumericFloat
import com.sun.jna.{Memory, NativeLibrary, Pointer}
import com.sun.jna.ptr.{LongByReference, PointerByReference}
import org.apache.spark.sql.DataFrame

/**
 * OpenVINO IR scored on the executors inside the JVM, through OpenVINO's C library (`libopenvino_c`, which the pinned
 * `openvino` Python package ships): the windows go from the rows to OpenVINO without Python workers or Arrow.
 * Each executor thread compiles the IR once (one inference thread, f32 arithmetic) and keeps it for later tasks.
 */
object OpenVino {

  /**
   * `frame` with `outputCol` (array<float>): the IR's (first) output for each row's features; see
   * `Prediction.withForward`. `libraryDirs` (separated by ':'): where to look for `libopenvino_c.so*` (the driver's
   * openvino package);
   * an executor also looks beside its own Python (`PYSPARK_PYTHON`).
   */
  def predict(xml: Array[Byte], weights: Array[Byte], libraryDirs: String, frame: DataFrame,
    featuresCol: String, shape: Array[Int], outputCol: String, batchSize: Int): DataFrame = {
    val dirs = libraryDirs.split(File.pathSeparator).filter(_.nonEmpty).toVector
    val ir = frame.sparkSession.sparkContext.broadcast(IRBytes(xml, weights))
    Prediction.withForward(frame, featuresCol, shape, outputCol, batchSize) { () =>
      val compiled = Compiled.forThread(ir.value, dirs)
      (input: Tensor[Float]) => compiled.infer(input)
    }
  }

  /** The IR's output for one batch on the driver, as the executors compute it (for tests and checks). */
  def forward(xml: Array[Byte], weights: Array[Byte], libraryDirs: String, input: Tensor[Float]): Tensor[Float] =
    Compiled.forThread(IRBytes(xml, weights), libraryDirs.split(File.pathSeparator).toVector).infer(input)
}

private[ml] case class IRBytes(xml: Array[Byte], weights: Array[Byte]) {
  val key: Int = java.util.Arrays.hashCode(xml) * 31 + java.util.Arrays.hashCode(weights)
}

/** OpenVINO's C library: its functions by name, a status other than 0 raised with OpenVINO's message. */
private[ml] final class OpenVinoC(library: NativeLibrary) {
  def call(name: String, args: AnyRef*): Unit = {
    val status = library.getFunction(name).invokeInt(args.toArray)
    if (status != 0) {
      val info = library.getFunction("ov_get_error_info").invokeString(Array[AnyRef](Int.box(status)), false)
      val last = library.getFunction("ov_get_last_err_msg").invokePointer(Array.empty[AnyRef])
      val detail = if (last == null) "" else {
        val text = last.getString(0)
        release("ov_free", last)
        text.linesIterator.map(_.trim).find(_.nonEmpty).map(": " + _).getOrElse("")
      }
      throw new IllegalStateException(s"OpenVINO $name failed ($info)$detail")
    }
  }

  /** A function that returns nothing (OpenVINO's `*_free`). */
  def release(name: String, handle: Pointer): Unit = library.getFunction(name).invokeVoid(Array[AnyRef](handle))

  /** A function whose last argument receives a handle: the handle. */
  def pointer(name: String, args: AnyRef*): Pointer = {
    val out = new PointerByReference()
    call(name, (args :+ out): _*)
    out.getValue
  }
}

private[ml] object OpenVinoC {
  private var loaded: Option[(OpenVinoC, Pointer, Int)] = None

  /** The library, one OpenVINO core per JVM, and the library's code for f32 elements. */
  def apply(dirs: Seq[String]): (OpenVinoC, Pointer, Int) = synchronized {
    if (loaded.isEmpty) {
      val library = locate(dirs)
      val c = new OpenVinoC(NativeLibrary.getInstance(library.toString))
      loaded = Some((c, c.pointer("ov_core_create"), float32(c)))
    }
    loaded.get
  }

  /**
   * `ov_element_type_e`'s code for f32, which moved between OpenVINO versions (2025 dropped `DYNAMIC`): the code just
   * before the first 8-byte type (f64, which follows f32 in every version), checked to be 4 bytes.
   */
  private def float32(c: OpenVinoC): Int = {
    val one = new Memory(8)
    one.setLong(0, 1L)
    val sizes = (0 until 8).map { code =>
      val tensor = new PointerByReference()
      scala.util.Try(c.call("ov_tensor_create", Int.box(code), Long.box(1L), one, tensor)).toOption.map { _ =>
        val bytes = new LongByReference()
        try c.call("ov_tensor_get_byte_size", tensor.getValue, bytes) finally c.release("ov_tensor_free", tensor.getValue)
        bytes.getValue
      }
    }
    val f64 = sizes.indexWhere(_.contains(8L))
    require(f64 > 0 && sizes(f64 - 1).contains(4L), s"cannot find OpenVINO's f32 element code (sizes $sizes)")
    f64 - 1
  }

  private def locate(dirs: Seq[String]): Path = {
    val python = Option(System.getenv("PYSPARK_PYTHON")).map(p => Paths.get(p).toAbsolutePath.getParent.getParent)
    val sitePackages = python.toSeq.flatMap { venv =>
      Option(venv.resolve("lib").toFile.listFiles()).toSeq.flatten.filter(_.getName.startsWith("python"))
        .map(_.toPath.resolve("site-packages/openvino/libs"))
    }
    val candidates = dirs.map(Paths.get(_)) ++ sitePackages
    candidates.iterator.flatMap { dir =>
      Option(dir.toFile.listFiles()).toSeq.flatten.find(_.getName.startsWith("libopenvino_c.so")).map(_.toPath)
    }.toSeq.headOption.getOrElse(throw new IllegalStateException(
      s"OpenVINO's C library (libopenvino_c.so) is in none of ${candidates.mkString(", ")}: install the openvino " +
        "Python package on the executors"))
  }
}

/** A compiled IR with one infer request, for one thread. */
private[ml] final class Compiled(val key: Int, c: OpenVinoC, core: Pointer, f32: Int, ir: IRBytes) {
  private val (model, compiled, request) = {
    val dir = Files.createTempDirectory("openvino-ir")
    try {
      val (xml, bin) = (dir.resolve("model.xml"), dir.resolve("model.bin"))
      Files.write(xml, ir.xml)
      Files.write(bin, ir.weights)
      val model = c.pointer("ov_core_read_model", core, xml.toString, bin.toString)
      // f32 arithmetic (the CPU plugin would use bfloat16 on CPUs that have it); one thread, as Spark runs one task
      // per core, and not pinned: the plugin would pin every thread's model to the same core.
      val compiled = new PointerByReference() // before the properties, which are variadic (key, value) pairs
      c.call("ov_core_compile_model", core, model, "CPU", Long.box(8L), compiled, "ENABLE_CPU_PINNING", "NO",
        "INFERENCE_PRECISION_HINT", "f32", "INFERENCE_NUM_THREADS", "1", "NUM_STREAMS", "1")
      (model, compiled.getValue, c.pointer("ov_compiled_model_create_infer_request", compiled.getValue))
    } finally {
      dir.toFile.listFiles().foreach(_.delete())
      dir.toFile.delete()
    }
  }
  private var buffer = new Memory(4)
  private var dims = new Memory(8)

  /** The first output for `input` (batch first), as a (batch, values per row) tensor. */
  def infer(input: Tensor[Float]): Tensor[Float] = {
    val x = input.contiguous()
    val count = x.nElement()
    if (buffer.size() < 4L * count) buffer = new Memory(4L * count)
    buffer.write(0, x.storage().array(), x.storageOffset() - 1, count)
    val shape = x.size()
    if (dims.size() < 8L * shape.length) dims = new Memory(8L * shape.length)
    dims.write(0, shape.map(_.toLong), 0, shape.length)
    // ov_shape_t {int64 rank; int64* dims} is passed by value: on x86-64 and AArch64 a 16-byte struct of two
    // integer words travels in two registers, exactly as two arguments do.
    val tensor = c.pointer("ov_tensor_create_from_host_ptr", Int.box(f32), Long.box(shape.length.toLong),
      dims, buffer)
    try {
      val bytes = new LongByReference()
      c.call("ov_tensor_get_byte_size", tensor, bytes)
      require(bytes.getValue == 4L * count, s"OpenVINO's f32 tensor holds ${bytes.getValue} bytes, not ${4L * count}")
      c.call("ov_infer_request_set_input_tensor_by_index", request, Long.box(0L), tensor)
      c.call("ov_infer_request_infer", request)
    } finally {
      c.release("ov_tensor_free", tensor)
    }
    val output = c.pointer("ov_infer_request_get_output_tensor_by_index", request, Long.box(0L))
    try {
      val size = new LongByReference()
      c.call("ov_tensor_get_size", output, size)
      val values = c.pointer("ov_tensor_data", output).getFloatArray(0, size.getValue.toInt)
      Tensor[Float](values, Array(shape(0), values.length / shape(0)))
    } finally {
      c.release("ov_tensor_free", output)
    }
  }

  def free(): Unit = {
    c.release("ov_infer_request_free", request)
    c.release("ov_compiled_model_free", compiled)
    c.release("ov_model_free", model)
  }
}

private[ml] object Compiled {
  private val current = new ThreadLocal[Compiled]

  /** This thread's compiled `ir`, compiled now if the thread last scored another IR (which is freed). */
  def forThread(ir: IRBytes, dirs: Seq[String]): Compiled = {
    val cached = current.get()
    if (cached != null && cached.key == ir.key) cached else {
      if (cached != null) cached.free()
      val (c, core, f32) = OpenVinoC(dirs)
      val compiled = new Compiled(ir.key, c, core, f32, ir)
      current.set(compiled)
      compiled
    }
  }
}
