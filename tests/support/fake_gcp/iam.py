"""A fake of the IAM admin API (`google.iam.admin.v1.IAM`) over real gRPC, in process.

`IAMClient` has only a gRPC transport, so this fake is a `grpc.server` with a generic handler that
(de)serialises the very message classes the client uses (proto-plus `iam_admin_v1.types` for service
accounts, `google.iam.v1` protobufs for policies). It serves GetServiceAccount, CreateServiceAccount,
GetIamPolicy and SetIamPolicy of service accounts; other methods answer UNIMPLEMENTED, as a server without
them would. Like `FakeServer` it checks the Authorization metadata (ADC token or self-signed JWT), records
every call (`calls`, `writes()`) and can fail the next calls of a method (`fail`). Policies carry etags:
a write with a stale etag answers ABORTED, as IAM does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.iam_admin_v1.types import iam as iam_types
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf.json_format import MessageToDict

from tests.support.fake_gcp.server import authorized

SERVICE = "google.iam.admin.v1.IAM"
WRITE_METHODS = frozenset({"CreateServiceAccount", "SetIamPolicy"})


@dataclass
class GrpcCall:
    method: str
    request: dict[str, Any]  # the request as JSON-style dict (camelCase, as the REST API would show it)


@dataclass
class GrpcFailure:
    method: str
    code: grpc.StatusCode
    message: str
    times: int


@dataclass
class FakeIam:
    accounts: dict[str, iam_types.ServiceAccount] = field(default_factory=dict)  # e-mail → account
    policies: dict[str, policy_pb2.Policy] = field(default_factory=dict)  # e-mail → policy
    calls: list[GrpcCall] = field(default_factory=list)
    failures: list[GrpcFailure] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    etag_counter: int = 0
    race_next_set: bool = False  # change the policy between the next get and set (an etag conflict)
    _server: grpc.Server | None = None
    _port: int = 0

    # ------------------------------------------------------------------ test API

    def fail(self, method: str, code: grpc.StatusCode = grpc.StatusCode.INTERNAL, message: str = "backend error",
             times: int = 1) -> None:
        """Answer the next `times` calls of `method` (e.g. "GetServiceAccount") with `code`."""
        with self.lock:
            self.failures.append(GrpcFailure(method, code, message, times))

    def writes(self) -> list[GrpcCall]:
        return [c for c in self.calls if c.method in WRITE_METHODS]

    def add_account(self, project: str, account_id: str, display_name: str = "") -> str:
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        self.accounts[email] = iam_types.ServiceAccount(
            name=f"projects/{project}/serviceAccounts/{email}", project_id=project, email=email,
            unique_id=str(100000000000000000000 + len(self.accounts)), display_name=display_name,
            oauth2_client_id=str(100000000000000000000 + len(self.accounts)))
        self.policies[email] = policy_pb2.Policy(version=1, etag=self._etag())
        return email

    def set_policy(self, email: str, bindings: list[tuple[str, list[str]]]) -> None:
        policy = policy_pb2.Policy(version=1, etag=self._etag())
        for role, members in bindings:
            policy.bindings.add(role=role, members=members)
        self.policies[email] = policy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ serving

    def start(self) -> FakeIam:
        methods: dict[str, tuple[Callable[..., Any], Callable[[bytes], Any], Callable[[Any], bytes]]] = {
            "GetServiceAccount": (self._get_account, iam_types.GetServiceAccountRequest.deserialize,
                                  iam_types.ServiceAccount.serialize),
            "CreateServiceAccount": (self._create_account, iam_types.CreateServiceAccountRequest.deserialize,
                                     iam_types.ServiceAccount.serialize),
            "GetIamPolicy": (self._get_policy, iam_policy_pb2.GetIamPolicyRequest.FromString,
                             policy_pb2.Policy.SerializeToString),
            "SetIamPolicy": (self._set_policy, iam_policy_pb2.SetIamPolicyRequest.FromString,
                             policy_pb2.Policy.SerializeToString),
        }
        handlers = {name: grpc.unary_unary_rpc_method_handler(self._wrap(name, fn), request_deserializer=des,
                                                              response_serializer=ser)
                    for name, (fn, des, ser) in methods.items()}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> FakeIam:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wrap(self, name: str, fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata())
            if not authorized(str(metadata.get("authorization", ""))):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "Request is missing required authentication "
                                                               "credential.")
            message = type(request).pb(request) if hasattr(type(request), "pb") else request
            with self.lock:
                self.calls.append(GrpcCall(name, MessageToDict(message)))
                for failure in self.failures:
                    if failure.method == name and failure.times > 0:
                        failure.times -= 1
                        context.abort(failure.code, failure.message)
                return fn(request, context)
        return handle

    def _etag(self) -> bytes:
        self.etag_counter += 1
        return f"etag-{self.etag_counter}".encode()

    def _email(self, resource: str, context: grpc.ServicerContext) -> str:
        """The e-mail in projects/{project or -}/serviceAccounts/{email}; NOT_FOUND when unknown."""
        parts = resource.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "serviceAccounts":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name: {resource}")
        email = parts[3]
        account = self.accounts.get(email)
        if account is None or parts[1] not in ("-", account.project_id):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Service account {email} does not exist.")
        return email

    def _get_account(self, request: iam_types.GetServiceAccountRequest,
                     context: grpc.ServicerContext) -> iam_types.ServiceAccount:
        return self.accounts[self._email(request.name, context)]

    def _create_account(self, request: iam_types.CreateServiceAccountRequest,
                        context: grpc.ServicerContext) -> iam_types.ServiceAccount:
        project = request.name.removeprefix("projects/")
        account_id = request.account_id
        if not (6 <= len(account_id) <= 30):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Account id must be 6 to 30 characters.")
        email = f"{account_id}@{project}.iam.gserviceaccount.com"
        if email in self.accounts:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Service account {account_id} already exists within "
                                                          "project projects/" + project + ".")
        self.add_account(project, account_id, request.service_account.display_name)
        return self.accounts[email]

    def _get_policy(self, request: iam_policy_pb2.GetIamPolicyRequest,
                    context: grpc.ServicerContext) -> policy_pb2.Policy:
        email = self._email(request.resource, context)
        policy = self.policies[email]
        if self.race_next_set:  # someone else writes after our read: the etag we return goes stale
            self.race_next_set = False
            current = policy_pb2.Policy()
            current.CopyFrom(policy)
            current.bindings.add(role="roles/iam.serviceAccountUser", members=["user:someone@example.com"])
            current.etag = self._etag()
            self.policies[email] = current
        return policy

    def _set_policy(self, request: iam_policy_pb2.SetIamPolicyRequest,
                    context: grpc.ServicerContext) -> policy_pb2.Policy:
        email = self._email(request.resource, context)
        if request.policy.etag and request.policy.etag != self.policies[email].etag:
            context.abort(grpc.StatusCode.ABORTED, "There were concurrent policy changes. Please retry the whole "
                                                   "read-modify-write with exponential backoff.")
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        policy.etag = self._etag()
        self.policies[email] = policy
        return policy
