"""The state machine definition that runs locally, taken from the synthesized template.

The definition that runs under moto is the one `cdk synth` produced: this module finds the
state machine in the CloudFormation template, resolves its tokens (`Fn::Join`, `Ref`,
`Fn::GetAtt`, ...) to local names and ARNs, and applies exactly one rewrite moto needs:
Distributed Map children declared `"ExecutionType": "EXPRESS"` become `"STANDARD"` (moto's
grammar accepts only STANDARD there). Every rewrite is reported so the CLI can say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_PARTITION = "aws"

STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
FUNCTION_TYPE = "AWS::Lambda::Function"
BUCKET_TYPE = "AWS::S3::Bucket"


class TemplateError(Exception):
    """The synthesized template cannot be turned into a local definition."""


@dataclass(frozen=True)
class LocalNames:
    """How template resources are named locally (account, region, physical names)."""

    account: str = LOCAL_ACCOUNT
    region: str = LOCAL_REGION
    partition: str = LOCAL_PARTITION
    stack_name: str = "local"

    def bucket_name(self, logical_id: str, props: dict[str, Any]) -> str:
        """A valid S3 bucket name for the bucket resource `logical_id`."""
        given = props.get("BucketName")
        if isinstance(given, str):
            return given
        return ("local-" + re.sub(r"[^a-z0-9-]", "-", logical_id.lower()))[:63]

    def function_name(self, logical_id: str, props: dict[str, Any]) -> str:
        """The function name for the Lambda resource `logical_id`."""
        given = props.get("FunctionName")
        return given if isinstance(given, str) else logical_id[:64]

    def function_arn(self, name: str) -> str:
        """The ARN of local function `name`."""
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{name}"


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the template, as the local runtime needs it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]


@dataclass
class LocalDefinition:
    """The resolved definition plus what the runner must create around it."""

    state_machine_logical_id: str
    definition: str
    #: Human-readable notes, one per rewrite applied to the synthesized definition.
    rewrites: list[str] = field(default_factory=list)
    #: Functions the definition invokes, by logical ID.
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    #: Every bucket of the template: logical ID -> local bucket name.
    buckets: dict[str, str] = field(default_factory=dict)

    @property
    def states(self) -> dict[str, Any]:
        """The parsed definition."""
        return json.loads(self.definition)


class TokenResolver:
    """Resolves CloudFormation intrinsic functions to local values."""

    def __init__(self, template: dict[str, Any], names: LocalNames) -> None:
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})
        self.names = names

    def _props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {}) or {}

    def physical_name(self, logical_id: str) -> str:
        """What `{"Ref": logical_id}` returns locally."""
        if logical_id not in self.resources:
            raise TemplateError(f"Ref to {logical_id!r}, which is not a resource of the template")
        kind = self.resources[logical_id]["Type"]
        props = self._props(logical_id)
        n = self.names
        if kind == BUCKET_TYPE:
            return n.bucket_name(logical_id, props)
        if kind == FUNCTION_TYPE:
            return n.function_name(logical_id, props)
        if kind == "AWS::SecretsManager::Secret":
            name = props.get("Name", logical_id)
            return f"arn:{n.partition}:secretsmanager:{n.region}:{n.account}:secret:{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:{n.partition}:sns:{n.region}:{n.account}:{logical_id}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{n.region}.amazonaws.com/{n.account}/{logical_id}"
        if kind == STATE_MACHINE_TYPE:
            return f"arn:{n.partition}:states:{n.region}:{n.account}:stateMachine:{logical_id}"
        return logical_id

    def attribute(self, logical_id: str, attribute: str) -> str:
        """What `{"Fn::GetAtt": [logical_id, attribute]}` returns locally."""
        if logical_id not in self.resources:
            raise TemplateError(f"Fn::GetAtt on {logical_id!r}, which is not a resource")
        kind = self.resources[logical_id]["Type"]
        n = self.names
        name = self.physical_name(logical_id)
        if kind == FUNCTION_TYPE and attribute == "Arn":
            return n.function_arn(name)
        if kind == BUCKET_TYPE:
            if attribute == "Arn":
                return f"arn:{n.partition}:s3:::{name}"
            if attribute in ("DomainName", "RegionalDomainName"):
                return f"{name}.s3.amazonaws.com"
        if kind in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret") and attribute in (
            "Arn",
            "TopicArn",
            "Id",
        ):
            return name
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:{n.partition}:sqs:{n.region}:{n.account}:{logical_id}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{n.partition}:iam::{n.account}:role/{logical_id}"
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "local"
        return f"arn:{n.partition}:{service}:{n.region}:{n.account}:{logical_id}/{attribute}"

    def ref(self, name: str) -> Any:
        """What `{"Ref": name}` returns locally (pseudo parameters, parameters, resources)."""
        n = self.names
        pseudo = {
            "AWS::Partition": n.partition,
            "AWS::Region": n.region,
            "AWS::AccountId": n.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": n.stack_name,
            "AWS::StackId": f"arn:{n.partition}:cloudformation:{n.region}:{n.account}:stack/"
            f"{n.stack_name}/local",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            default = self.parameters[name].get("Default")
            if default is None:
                raise TemplateError(f"template parameter {name!r} has no default to run locally")
            return default
        return self.physical_name(name)

    def resolve(self, node: Any) -> Any:
        """Resolve every intrinsic function inside `node`."""
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, attribute)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self.resolve(part)) for part in self.resolve(parts))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"cannot resolve {key} locally: {json.dumps(node)[:200]}")
        return {key: self.resolve(value) for key, value in node.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved_vars = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr in resolved_vars:
                return str(resolved_vars[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, attribute = expr.split(".", 1)
                return self.attribute(logical_id, attribute)
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)


def find_state_machine(template: dict[str, Any]) -> str:
    """Return the logical ID of the template's one state machine."""
    found = [
        lid
        for lid, res in template.get("Resources", {}).items()
        if res.get("Type") == STATE_MACHINE_TYPE
    ]
    if len(found) != 1:
        raise TemplateError(
            f"expected exactly one {STATE_MACHINE_TYPE} in the template, found {len(found)}"
        )
    return found[0]


def _referenced_functions(node: Any, resources: dict[str, Any], acc: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key in ("Fn::GetAtt", "Ref"):
            if key in node:
                target = node[key]
                lid = target[0] if isinstance(target, list) else str(target).split(".")[0]
                if resources.get(lid, {}).get("Type") == FUNCTION_TYPE:
                    acc.add(lid)
        for value in node.values():
            _referenced_functions(value, resources, acc)
    elif isinstance(node, list):
        for item in node:
            _referenced_functions(item, resources, acc)
    return acc


def _rewrite_map_children(states: dict[str, Any], rewrites: list[str], path: str = "") -> None:
    """Make Distributed Map children STANDARD, recording each change (moto needs it)."""
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state.get("Type") == "Map" and processor:
            config = processor.get("ProcessorConfig", {})
            if config.get("ExecutionType") == "EXPRESS":
                config["ExecutionType"] = "STANDARD"
                rewrites.append(
                    f'{path}{name}: children "ExecutionType" EXPRESS -> STANDARD '
                    "(moto runs only STANDARD; AWS runs EXPRESS)"
                )
            _rewrite_map_children(processor.get("States", {}), rewrites, f"{path}{name}/")
        for branch in state.get("Branches", []) or []:
            _rewrite_map_children(branch.get("States", {}), rewrites, f"{path}{name}/")


def local_definition(template: dict[str, Any], names: LocalNames | None = None) -> LocalDefinition:
    """Build the local definition from a synthesized CloudFormation template."""
    names = names or LocalNames()
    resolver = TokenResolver(template, names)
    sm_id = find_state_machine(template)
    props = resolver.resources[sm_id].get("Properties", {})
    raw = props.get("DefinitionString")
    if raw is None:
        raise TemplateError(f"state machine {sm_id} has no DefinitionString")
    text = resolver.resolve(raw)
    for key, value in (resolver.resolve(props.get("DefinitionSubstitutions") or {})).items():
        text = text.replace("${" + key + "}", str(value))
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"state machine {sm_id} definition is not JSON: {exc}") from None
    rewrites: list[str] = []
    _rewrite_map_children(parsed.get("States", {}), rewrites)

    functions: dict[str, FunctionSpec] = {}
    for lid in sorted(_referenced_functions(raw, resolver.resources, set())):
        fprops = resolver.resources[lid].get("Properties", {})
        env = resolver.resolve((fprops.get("Environment") or {}).get("Variables") or {})
        name = resolver.physical_name(lid)
        functions[lid] = FunctionSpec(
            logical_id=lid,
            name=name,
            arn=names.function_arn(name),
            handler=str(fprops.get("Handler", "")),
            runtime=str(fprops.get("Runtime", "python3.12")),
            timeout_s=int(fprops.get("Timeout", 3)),
            memory_mb=int(fprops.get("MemorySize", 128)),
            environment={k: str(v) for k, v in env.items()},
        )
    buckets = {
        lid: resolver.physical_name(lid)
        for lid, res in resolver.resources.items()
        if res.get("Type") == BUCKET_TYPE
    }
    return LocalDefinition(
        state_machine_logical_id=sm_id,
        definition=json.dumps(parsed, separators=(",", ":")),
        rewrites=rewrites,
        functions=functions,
        buckets=buckets,
    )
