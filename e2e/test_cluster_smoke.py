"""Smoke tests of the e2e cluster itself: locally built images run as pods
(imagePullPolicy Never, no registry) and Services resolve through CoreDNS."""

import pytest
from kube import IMAGES

pytestmark = pytest.mark.e2e

REDIS_MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis}
spec:
  replicas: 1
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
      - name: redis
        image: %(image)s
        imagePullPolicy: Never
        ports: [{containerPort: 6379}]
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
        volumeMounts: [{name: data, mountPath: /data}]
        readinessProbe:
          exec: {command: [redis-cli, ping]}
          periodSeconds: 2
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec:
  selector: {app: redis}
  ports: [{port: 6379, targetPort: 6379}]
"""


def test_node_ready(kubectl):
    nodes = kubectl.json("get", "nodes")["items"]
    assert nodes
    for node in nodes:
        conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conds["Ready"] == "True", conds


def test_redis_pod_and_service_dns(kubectl, namespace, pods_ready, one_shot_pod):
    kubectl.apply(REDIS_MANIFEST % {"image": IMAGES["redis"]}, "-n", namespace)
    pods_ready(namespace, "app=redis")
    # resolves the Service name through CoreDNS and talks through kube-proxy
    out = one_shot_pod(
        namespace,
        "ping",
        IMAGES["redis"],
        ["sh", "-c", f"getent hosts redis.{namespace}.svc.cluster.local && redis-cli -h redis ping"],
    )
    assert "PONG" in out, out


def test_python_images_import(namespace, one_shot_pod):
    code = "import pids, numpy, redis; print('ok', pids.__name__)"
    out = one_shot_pod(namespace, "worker-import", IMAGES["worker"], ["python", "-c", code])
    assert "ok pids" in out
    code = "import pids_operator, kopf, kubernetes; print('ok')"
    out = one_shot_pod(namespace, "operator-import", IMAGES["operator"], ["python", "-c", code])
    assert "ok" in out


def test_images_run_as_uid_10001(namespace, one_shot_pod):
    for name, image in IMAGES.items():
        out = one_shot_pod(namespace, f"uid-{name}", image, ["id", "-u"])
        assert out.strip() == "10001", (image, out)


PVC_MANIFEST = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: %(image)s
    imagePullPolicy: Never
    command: [sh, -c, "echo persisted > /data/file && cat /data/file"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
"""


def test_pvc_is_provisioned(kubectl, namespace, wait):
    kubectl.apply(PVC_MANIFEST % {"image": IMAGES["redis"]}, "-n", namespace)

    def succeeded():
        return kubectl.json("get", "pod", "writer", "-n", namespace)["status"].get("phase") == "Succeeded"

    wait(succeeded, timeout=180, interval=2, message="pod writing to a PVC")
    assert kubectl("logs", "writer", "-n", namespace).stdout.strip() == "persisted"
    assert kubectl.json("get", "pvc", "data", "-n", namespace)["status"]["phase"] == "Bound"
