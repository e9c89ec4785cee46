package com.intel.analytics.bigdl.dllib.optim

import java.io.{BufferedInputStream, BufferedOutputStream, DataInputStream, DataOutputStream, IOException}
import java.net.{InetAddress, InetSocketAddress, ServerSocket, Socket}
import java.nio.{ByteBuffer, ByteOrder}
import java.security.SecureRandom

import org.apache.logging.log4j.LogManager

/**
 * The driver's end of BarrierOptimizer's all-reduce: each of `workers` tasks connects once per job, presents the
 * job's token and its partition, then sends (loss, gradient) every iteration; the hub adds them up in partition
 * order and sends the same sums back to every task, so that all replicas take identical steps.
 *
 * One TCP round trip per iteration (BarrierTaskContext.allGather polls once a second). When a connection breaks
 * (a lost executor: Spark reruns the whole barrier stage) the hub drops the round and waits for a new set of tasks.
 */
class GradientHub(host: String, workers: Int, size: Int) extends AutoCloseable {
  private val logger = LogManager.getLogger(getClass)
  private val server = new ServerSocket()
  server.bind(new InetSocketAddress(InetAddress.getByName(host), 0))
  val address: String = s"$host:${server.getLocalPort}"
  val token: Long = new SecureRandom().nextLong()

  private val thread = new Thread(() => serve(), "pipelines-gradient-hub")
  thread.setDaemon(true)
  thread.start()

  @volatile private var round = Array.empty[GradientHub.Peer]

  /** Drops the current round: its tasks' next exchange fails, so that none outlives a failed job. */
  def reset(): Unit = round.filter(_ != null).foreach(_.socket.close())

  /** The task's partition, or -1 for a connection without the job's token (given up after a minute). */
  private def introduction(peer: GradientHub.Peer): Int = {
    try {
      peer.socket.setSoTimeout(60000)
      if (peer.in.readLong() != token) return -1
      val partition = peer.in.readInt()
      peer.socket.setSoTimeout(0)
      partition
    } catch {
      case _: IOException => -1
    }
  }

  private def serve(): Unit = {
    val sums = new Array[Float](size + 1)
    val bytes = new Array[Byte](4 * (size + 1))
    while (!server.isClosed) {
      val peers = new Array[GradientHub.Peer](workers)
      round = peers
      try {
        var joined = 0
        while (joined < workers) {
          val peer = GradientHub.Peer(server.accept())
          val partition = introduction(peer)
          if (partition >= 0) {
            require(partition < workers && peers(partition) == null, s"bad partition $partition")
            peers(partition) = peer
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
        case _: IOException | _: IllegalArgumentException =>
          if (!server.isClosed) logger.debug("gradient hub: a round ended; waiting for the tasks to connect again")
      } finally {
        peers.filter(_ != null).foreach(_.socket.close())
      }
    }
  }

  override def close(): Unit = {
    server.close()
    reset()
    thread.join(10000)
  }
}

object GradientHub {
  case class Peer(socket: Socket) {
    socket.setTcpNoDelay(true)
    val in = new DataInputStream(new BufferedInputStream(socket.getInputStream, 1 << 16))
    val out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream, 1 << 16))
  }

  /** A task's end: connect, then `reduce` once per iteration. */
  class Client(address: String, token: Long, partition: Int, size: Int) extends AutoCloseable {
    private val Array(host, port) = address.split(":")
    private val peer = Peer(new Socket(host, port.toInt))
    private val bytes = new Array[Byte](4 * (size + 1))
    peer.out.writeLong(token)
    peer.out.writeInt(partition)
    peer.out.flush()

    /** Sends (loss, gradient); returns the sum of every task's loss and adds up their gradients into `sums`. */
    def reduce(loss: Float, gradient: Array[Float], offset: Int, sums: Array[Float]): Float = {
      val buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
      buffer.putFloat(loss)
      buffer.asFloatBuffer().put(gradient, offset, size)
      peer.out.write(bytes)
      peer.out.flush()
      peer.in.readFully(bytes)
      val back = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
      val total = back.getFloat()
      back.asFloatBuffer().get(sums, 0, size)
      total
    }

    override def close(): Unit = peer.socket.close()
  }
}
