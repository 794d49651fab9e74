"""botocore's Stubber bound to ONE operation, for the corners moto 5.2.5 cannot reach.

Every other call of the command still reaches moto. Used for RedriveExecution (moto lacks
the API) and for a subscription pending confirmation (moto confirms every subscription).
"""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber

from enrichctl.ops.aws import Deployment


class OneOperationStubber(Stubber):
    """A Stubber that answers only `operation` ("<event prefix>.<OperationName>")."""

    def __init__(self, client: Any, operation: str) -> None:
        super().__init__(client)
        self.operation = operation

    def activate(self) -> None:
        self.client.meta.events.register_first(
            f"before-parameter-build.{self.operation}",
            self._assert_expected_params,
            unique_id=self._expected_params_event_id,
        )
        self.client.meta.events.register(
            f"before-call.{self.operation}", self._get_response_handler, unique_id=self._event_id
        )


def stub_one_call(
    monkeypatch: Any,
    service: str,
    operation: str,
    method: str,
    response: dict[str, Any],
    expected_params: dict[str, Any],
) -> list[Stubber]:
    """Stub one call of the commands' `service` client; returns [the stubber] once created.

    Args:
        service: the client's service name ("stepfunctions", "sns").
        operation: the event name of the operation ("states.RedriveExecution").
        method: the client method ("redrive_execution").
    """
    stubs: list[Stubber] = []
    original = Deployment.client

    def client(self: Deployment, name: str) -> Any:
        made = original(self, name)
        if name == service and not stubs:
            stub = OneOperationStubber(made, operation)
            stub.add_response(method, response, expected_params)
            stub.activate()
            stubs.append(stub)
        return made

    monkeypatch.setattr(Deployment, "client", client)
    return stubs
