"""Real Kafka for tests.

Fixtures
--------
``kafka_bootstrap`` (session) -> ``"host:port"`` of a broker, chosen in this order:

1. env ``KAFKA_BOOTSTRAP`` if set (an existing broker; nothing is started or stopped);
2. testcontainers' Kafka module, if a Docker engine answers ``docker.from_env().ping()``
   (set ``KAFKA_USE_DOCKER=0`` to skip this step; image: env ``KAFKA_TESTCONTAINERS_IMAGE``);
3. a local broker from Maven jars: ``infra/kafka/broker start --dir <tmp>``, stopped at the
   end of the session.

``kafka_broker`` (function) -> :class:`LocalKafkaBroker`, ALWAYS a private local-jar broker
(whatever ``KAFKA_BOOTSTRAP`` or Docker say), for fault tests that stop, kill and restart
it. Connect to ``kafka_broker.bootstrap``, not to ``kafka_bootstrap``; the address stays
the same across restarts. When ``kafka_bootstrap`` itself fell back to local jars, both
fixtures share one broker. After each test that used it, the broker is started again if
the test left it down.

``kafka_cluster`` (function) -> :class:`LocalKafkaCluster`, a private local three-node KRaft
cluster (``infra/kafka/broker start --brokers 3``: replication factor 3, min.insync.replicas
2), started on first use and shared by the session; a test may kill and restart single
nodes (``kill(node)``, ``start(node)``), and every node runs again after it.

If a broker cannot be started the test fails with the broker log tail: these tests never
skip (CI or not).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BROKER_SCRIPT = REPO / "infra" / "kafka" / "broker"
# First start may run Maven; later starts take a few seconds.
START_TIMEOUT_S = float(os.environ.get("KAFKA_BROKER_START_TIMEOUT", "300"))
PREWARM_TOPIC = "auditledger-prewarm"


def _run_script(dir: Path, command: tuple[str, ...], timeout: float, what: str,
                tail: Callable[[], str]) -> subprocess.CompletedProcess[str]:
    """``infra/kafka/broker COMMAND --dir DIR …``; a hang fails the test with the log tail."""
    args = [sys.executable, str(BROKER_SCRIPT), command[0], "--dir", str(dir), *command[1:]]
    try:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(args)}` did not finish within {timeout:.0f}s\n"
                    f"--- {what} ---\n{tail()}", pytrace=False)
        raise AssertionError("unreachable") from exc


class LocalKafkaBroker:
    """Handle on a single-node broker run by ``infra/kafka/broker`` with its state in ``dir``.

    ``start()`` / ``stop()`` / ``kill()`` call the script; ``bootstrap`` is stable for the
    life of ``dir`` (ports are kept in ``dir/state.json``), so clients can reconnect after
    a restart.
    """

    def __init__(self, dir: Path) -> None:
        self.dir = Path(dir)
        self._bootstrap: str | None = None
        self.last_start_seconds: float | None = None

    # -- script wrapper ------------------------------------------------------------------
    def _run(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return _run_script(self.dir, (command,), timeout, "broker log tail", self.log_tail)

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``; the same after every restart."""
        if self._bootstrap is None:
            raise RuntimeError("local Kafka broker was never started")
        return self._bootstrap

    def start(self) -> str:
        """Start (or confirm running) and wait until it serves; returns the bootstrap."""
        t0 = time.monotonic()
        proc = self._run("start", timeout=START_TIMEOUT_S + 30)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            pytest.fail(
                f"local Kafka broker failed to start (exit {proc.returncode}, dir {self.dir}):\n"
                f"{proc.stderr.strip()}",
                pytrace=False,
            )
        self._bootstrap = lines[-1].strip()
        self.last_start_seconds = time.monotonic() - t0
        return self._bootstrap

    def stop(self) -> None:
        """SIGTERM and wait for a clean shutdown (SIGKILL after 30 s)."""
        proc = self._run("stop", timeout=60)
        if proc.returncode != 0:
            pytest.fail(f"broker stop failed: {proc.stderr.strip()}", pytrace=False)

    def kill(self) -> None:
        """SIGKILL at once: a crash, no controlled shutdown."""
        proc = self._run("kill", timeout=30)
        if proc.returncode != 0:
            pytest.fail(f"broker kill failed: {proc.stderr.strip()}", pytrace=False)

    def restart(self) -> str:
        self.stop()
        return self.start()

    def is_running(self) -> bool:
        return self._run("status", timeout=30).returncode == 0

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = (self.dir / "broker.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker.log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"LocalKafkaBroker(dir={str(self.dir)!r}, bootstrap={self._bootstrap!r})"


def prewarm(bootstrap: str, timeout_s: float = 120.0) -> None:
    """Create the transaction and consumer-offsets internal topics up front.

    One throwaway transactional producer runs ``init_transactions()`` and commits, and one
    consumer group joins and commits, so the first real test does not pay for (or time out
    on) the lazy creation of ``__transaction_state`` / ``__consumer_offsets``.
    """
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.errors import TopicAlreadyExistsError

    deadline = time.monotonic() + timeout_s
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="prewarm")
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(
                {PREWARM_TOPIC: {"num_partitions": 1, "replication_factor": 1}},
                wait_for_metadata=True,
            )
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"prewarm-{uuid.uuid4().hex}",
        acks="all",
        enable_idempotence=True,
        max_block_ms=int(timeout_s * 1000),
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(PREWARM_TOPIC, b"prewarm")
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(
        PREWARM_TOPIC,
        bootstrap_servers=bootstrap,
        group_id=f"prewarm-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    try:
        got = False
        while not got:
            if time.monotonic() > deadline:
                pytest.fail(f"Kafka pre-warm: no record read from {bootstrap}", pytrace=False)
            got = any(consumer.poll(timeout_ms=500).values())
        consumer.commit()
    finally:
        consumer.close()


def _docker_answers() -> bool:
    if os.environ.get("KAFKA_USE_DOCKER", "1").lower() in ("0", "false", "no"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def _testcontainers_kafka() -> Iterator[str]:
    """Kafka in Docker via testcontainers (KRaft, one node, internal topics RF=1)."""
    from testcontainers.community.kafka import KafkaContainer

    image = os.environ.get("KAFKA_TESTCONTAINERS_IMAGE", "confluentinc/cp-kafka:8.0.0")
    container = KafkaContainer(image).with_kraft()
    for key, value in {
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
    }.items():
        container.with_env(key, value)
    try:
        container.start(timeout=int(START_TIMEOUT_S))
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        pytest.fail(f"testcontainers Kafka ({image}) failed to start: {exc!r}", pytrace=False)
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def _kafka_local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafkaBroker]:
    """The session's private local-jar broker (started lazily, stopped at session end)."""
    broker = LocalKafkaBroker(tmp_path_factory.mktemp("kafka-broker"))
    try:
        broker.start()
        prewarm(broker.bootstrap)
        yield broker
    finally:
        if broker.is_running():
            broker.stop()
            if broker.is_running():
                broker.kill()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """``host:port`` of a real Kafka broker (see the module docstring for the order)."""
    env = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if env:
        prewarm(env)
        yield env
    elif _docker_answers():
        with _testcontainers_kafka() as bootstrap:
            prewarm(bootstrap)
            yield bootstrap
    else:
        yield request.getfixturevalue("_kafka_local_broker").bootstrap


@pytest.fixture
def kafka_broker(_kafka_local_broker: LocalKafkaBroker) -> Iterator[LocalKafkaBroker]:
    """A private local-jar broker the test may ``stop()``, ``kill()`` and ``start()``."""
    if not _kafka_local_broker.is_running():
        _kafka_local_broker.start()
    yield _kafka_local_broker
    if not _kafka_local_broker.is_running():
        _kafka_local_broker.start()


class LocalKafkaCluster:
    """Handle on a local KRaft cluster (``infra/kafka/broker start --brokers N``) in ``dir``.

    Every node is broker and controller; ``start``/``stop``/``kill``/``is_running`` act on
    the whole cluster, or on one node with ``node=N`` (1-based). ``bootstrap`` lists every
    node's address and stays the same across restarts. Failures fail the test with the
    script's stderr (which carries the nodes' log tails); they never skip.
    """

    def __init__(self, dir: Path, brokers: int = 3) -> None:
        self.dir = Path(dir)
        self.brokers = brokers
        self._bootstrap: str | None = None

    def _run(self, command: str, *extra: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return _run_script(self.dir, (command, *extra), timeout, "node log tails",
                           self.log_tails)

    @staticmethod
    def _node_args(node: int | None) -> tuple[str, ...]:
        return () if node is None else ("--node", str(node))

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:P1,127.0.0.1:P2,…``; the same after every restart."""
        if self._bootstrap is None:
            raise RuntimeError("local Kafka cluster was never started")
        return self._bootstrap

    def node_bootstrap(self, node: int) -> str:
        """The address of one node (``node`` is 1-based)."""
        return self.bootstrap.split(",")[node - 1]

    def start(self, node: int | None = None) -> str:
        """Start the cluster (or one node) and wait until it serves; returns the bootstrap."""
        extra = ("--brokers", str(self.brokers)) if node is None else self._node_args(node)
        proc = self._run("start", *extra, timeout=START_TIMEOUT_S + 30)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            pytest.fail(
                f"local Kafka cluster failed to start (exit {proc.returncode}, dir {self.dir},"
                f" node {node or 'all'}):\n{proc.stderr.strip()}",
                pytrace=False,
            )
        self._bootstrap = lines[-1].strip()
        return self._bootstrap

    def stop(self, node: int | None = None) -> None:
        proc = self._run("stop", *self._node_args(node), timeout=90)
        if proc.returncode != 0:
            pytest.fail(f"cluster stop failed: {proc.stderr.strip()}", pytrace=False)

    def kill(self, node: int | None = None) -> None:
        """SIGKILL: a crash, no controlled shutdown."""
        proc = self._run("kill", *self._node_args(node), timeout=30)
        if proc.returncode != 0:
            pytest.fail(f"cluster kill failed: {proc.stderr.strip()}", pytrace=False)

    def is_running(self, node: int | None = None) -> bool:
        """All nodes (or ``node``) running."""
        return self._run("status", *self._node_args(node), timeout=30).returncode == 0

    def log_tails(self, lines: int = 30) -> str:
        out = []
        for n in range(1, self.brokers + 1):
            path = self.dir / f"node-{n}" / "broker.log"
            text = path.read_text(errors="replace") if path.exists() else "(no broker.log)"
            out.append(f"--- node {n} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"LocalKafkaCluster(dir={str(self.dir)!r}, bootstrap={self._bootstrap!r})"


@pytest.fixture(scope="session")
def _kafka_local_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalKafkaCluster]:
    """The session's three-node cluster (started on first use, stopped at session end).
    Pre-warmed while all three run: the internal topics need three live brokers to be
    created at replication factor 3."""
    cluster = LocalKafkaCluster(tmp_path_factory.mktemp("kafka-cluster"))
    try:
        cluster.start()
        prewarm(cluster.bootstrap)
        yield cluster
    finally:
        cluster.stop()
        if cluster.is_running():
            cluster.kill()


@pytest.fixture
def kafka_cluster(_kafka_local_cluster: LocalKafkaCluster) -> Iterator[LocalKafkaCluster]:
    """A local three-broker KRaft cluster the test may kill and restart node by node; every
    node is running again before and after the test."""
    if not _kafka_local_cluster.is_running():
        _kafka_local_cluster.start()
    yield _kafka_local_cluster
    if not _kafka_local_cluster.is_running():
        _kafka_local_cluster.start()
