package com.intel.analytics.bigdl.dllib.optim

import java.io.{BufferedInputStream, BufferedOutputStream, DataInputStream, DataOutputStream, EOFException, IOException}
import java.net.{InetAddress, InetSocketAddress, ServerSocket, Socket, SocketTimeoutException}
import java.nio.{ByteBuffer, ByteOrder}
import java.security.SecureRandom

import org.apache.logging.log4j.LogManager
import org.apache.spark.{TaskContext, TaskKilledException}

/**
 * The driver's end of BarrierOptimizer's all-reduce: each of `workers` tasks of a barrier job connects once,
 * presents the run's token, the job's attempt and its partition, then sends (loss, gradient) every iteration; the
 * hub adds them up in partition order and sends the same sums back to every task, so that all replicas take
 * identical steps.
 *
 * One TCP round trip per iteration (BarrierTaskContext.allGather polls once a second). Each barrier job (a rerun
 * too) is an attempt opened by `open()`: the hub drops the previous attempt's connections, so that a task of a
 * failed job gets an error instead of waiting, and refuses connections of any attempt but the current one.
 */
class GradientHub(host: String, workers: Int, size: Int) extends AutoCloseable {
  private val logger = LogManager.getLogger(getClass)
  private val server = new ServerSocket()
  server.bind(new InetSocketAddress(InetAddress.getByName(host), 0))
  val address: String = s"$host:${server.getLocalPort}"
  val token: Long = new SecureRandom().nextLong()

  @volatile private var attempt = 0
  private val connected = new java.util.concurrent.ConcurrentLinkedQueue[GradientHub.Peer]()

  private val thread = new Thread(() => serve(), "pipelines-gradient-hub")
  thread.setDaemon(true)
  thread.start()

  /** A new attempt (before each barrier job): the previous attempt's tasks are cut off. Returns its number. */
  def open(): Int = synchronized {
    attempt += 1
    dropAll()
    attempt
  }

  private def dropAll(): Unit = {
    var peer = connected.poll()
    while (peer != null) {
      peer.socket.close()
      peer = connected.poll()
    }
  }

  /** The task's (attempt, partition), or None for a connection without the run's token (given up after a minute). */
  private def introduction(peer: GradientHub.Peer): Option[(Int, Int)] = {
    try {
      peer.socket.setSoTimeout(60000)
      if (peer.in.readLong() != token) return None
      val taskAttempt = peer.in.readInt()
      val partition = peer.in.readInt()
      peer.socket.setSoTimeout(0)
      Some((taskAttempt, partition))
    } catch {
      case _: IOException => None
    }
  }

  private def serve(): Unit = {
    val sums = new Array[Float](size + 1)
    val bytes = new Array[Byte](4 * (size + 1))
    while (!server.isClosed) {
      val peers = new Array[GradientHub.Peer](workers)
      var current = -1
      try {
        var joined = 0
        while (joined < workers) {
          val peer = GradientHub.Peer(server.accept())
          val introduced = introduction(peer)
          val fresh = synchronized {
            introduced.exists { case (taskAttempt, partition) =>
              taskAttempt == attempt && partition >= 0 && partition < workers && {
                if (current != attempt) { // a new attempt began: forget the peers of the old one
                  peers.indices.foreach(i => peers(i) = null)
                  joined = 0
                  current = attempt
                }
                peers(partition) == null
              }
            } && { connected.add(peer); true }
          }
          if (fresh) {
            peers(introduced.get._2) = peer
            joined += 1
          } else {
            peer.socket.close()
          }
        }
        while (true) {
          java.util.Arrays.fill(sums, 0f)
          peers.foreach { peer =>
            peer.in.readFully(bytes)
            val values = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
            var i = 0
            while (i < sums.length) {
              sums(i) += values.get(i)
              i += 1
            }
          }
          ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(sums)
          peers.foreach { peer =>
            peer.out.write(bytes)
            peer.out.flush()
          }
        }
      } catch {
        case _: IOException =>
          if (!server.isClosed) logger.debug("gradient hub: a round ended; waiting for the next attempt's tasks")
      } finally {
        peers.filter(_ != null).foreach(_.socket.close())
      }
    }
  }

  override def close(): Unit = {
    server.close()
    synchronized(dropAll())
    thread.join(10000)
  }
}

object GradientHub {
  case class Peer(socket: Socket) {
    socket.setTcpNoDelay(true)
    val in = new DataInputStream(new BufferedInputStream(socket.getInputStream, 1 << 16))
    val out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream, 1 << 16))
  }

  /**
   * A task's end: connect, then `reduce` once per iteration. While it waits for the sums it wakes every second,
   * so that a task Spark kills (its barrier job failed elsewhere) ends instead of holding its core.
   */
  class Client(address: String, token: Long, attempt: Int, partition: Int, size: Int) extends AutoCloseable {
    private val Array(host, port) = address.split(":")
    private val peer = Peer(new Socket(host, port.toInt))
    private val bytes = new Array[Byte](4 * (size + 1))
    peer.socket.setSoTimeout(1000)
    peer.out.writeLong(token)
    peer.out.writeInt(attempt)
    peer.out.writeInt(partition)
    peer.out.flush()

    /** Sends (loss, gradient); returns the sum of every task's loss and adds up their gradients into `sums`. */
    def reduce(loss: Float, gradient: Array[Float], offset: Int, sums: Array[Float]): Float = {
      val buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
      buffer.putFloat(loss)
      buffer.asFloatBuffer().put(gradient, offset, size)
      peer.out.write(bytes)
      peer.out.flush()
      receive()
      val back = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
      val total = back.getFloat()
      back.asFloatBuffer().get(sums, 0, size)
      total
    }

    private def receive(): Unit = {
      var read = 0
      while (read < bytes.length) {
        try {
          val n = peer.in.read(bytes, read, bytes.length - read)
          if (n < 0) throw new EOFException("the gradient hub closed the connection (the job's attempt ended)")
          read += n
        } catch {
          case _: SocketTimeoutException =>
            if (Option(TaskContext.get()).exists(_.isInterrupted())) {
              throw new TaskKilledException("killed while waiting for the gradient hub")
            }
        }
      }
    }

    override def close(): Unit = peer.socket.close()
  }
}
