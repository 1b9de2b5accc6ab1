#!/usr/bin/env python3
"""Deploy smoke test: create the synthesized stack through CloudFormation on a local moto_server.

Usage: scripts/deploy-smoke.py [cdk.out] (make deploy-smoke runs it after make synth).

What it does, as `cdk deploy` would against a bootstrapped account:
  1. starts moto_server on a free loopback port (AWS_ENDPOINT_URL points every client at it);
  2. plays `cdk bootstrap`'s part: the SSM parameter /cdk-bootstrap/hnb659fds/version and the
     asset bucket cdk-hnb659fds-assets-<account>-<region>;
  3. publishes the assets of <stack>.assets.json (each function's folder zipped, as the CDK CLI
     does) and the template to that bucket;
  4. creates the stack (TemplateURL, CAPABILITY_IAM) and waits for CREATE_COMPLETE;
  5. checks, through each service's own API, that the resources exist with the template's key
     settings: the table (keys, indexes, stream), the three functions (runtime, handler, code
     from the uploaded asset), the stream mapping (retries, record age, bisect, filter, DLQ),
     the DLQ, the roles and managed policies,
     the log groups, the dashboard and the outputs;
  6. creates the alarms through CloudWatch's PutMetricAlarm with the template's properties.
Before step 4, the resource types moto's CloudFormation does not implement are taken out of the
template; they must be exactly MOTO_UNSUPPORTED (see there and docs/deploy.md).

Every wait is bounded; a failure says what failed and exits 1. Needs python3 with moto[server]
and boto3 (both on these machines).
"""
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
QUALIFIER = "hnb659fds"
START_TIMEOUT = 60
STACK_TIMEOUT = 300

# Resource types of the template that moto 5.x's CloudFormation does not implement. They are
# taken out of the template before creating it (references to them become placeholder strings,
# as moto would otherwise refuse the template); the alarms are then created through CloudWatch's
# own API (PutMetricAlarm) with the template's properties. Checked exactly: a template change
# that adds another unsupported type, or a moto that implements one, fails here (update this
# set and docs/deploy.md together).
MOTO_UNSUPPORTED = {
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::MetricFilter",
    "AWS::SQS::QueuePolicy",
}


def moto_types():
    """The resource types moto's CloudFormation implements."""
    from moto.cloudformation.parsing import get_model_map
    return set(get_model_map())


def strip(template, types):
    """Returns the template without resources of types, references to them replaced by
    placeholder strings, and the removed resources."""
    removed = {k: v for k, v in template["Resources"].items() if v["Type"] in types}

    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"Ref"} and x["Ref"] in removed:
                return "moto-unsupported-" + x["Ref"]
            if set(x) == {"Fn::GetAtt"} and x["Fn::GetAtt"][0] in removed:
                return "moto-unsupported-" + "-".join(x["Fn::GetAtt"])
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    out = dict(template)
    out["Resources"] = {}
    for k, v in template["Resources"].items():
        if k in removed:
            continue
        v = walk(v)
        deps = v.get("DependsOn")
        if deps is not None:
            deps = [d for d in ([deps] if isinstance(deps, str) else deps) if d not in removed]
            if deps:
                v["DependsOn"] = deps
            else:
                del v["DependsOn"]
        out["Resources"][k] = v
    out["Outputs"] = walk(template.get("Outputs", {}))
    return out, removed


def fail(msg):
    print("deploy-smoke: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port, log):
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail("moto_server exited at start (exit %s); is moto[server] installed?" % proc.returncode)
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/moto-api/" % port, timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    fail("moto_server did not answer within %d s" % START_TIMEOUT)


def zip_dir(path):
    """Zips a folder as the CDK CLI packages a "zip" asset: its files, executable bits kept."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for root, _, files in os.walk(path):
            for name in sorted(files):
                full = os.path.join(root, name)
                info = zipfile.ZipInfo(os.path.relpath(full, path), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (os.stat(full).st_mode & 0o777) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(full, "rb") as f:
                    z.writestr(info, f.read())
    return buf.getvalue()


def sub(s):
    return (s.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
            .replace("${AWS::Partition}", "aws"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "cdk.out"
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    stacks = [k for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"]
    if len(stacks) != 1:
        fail("want one stack in %s, found %s" % (out, stacks))
    name = stacks[0]
    template_path = os.path.join(out, manifest["artifacts"][name]["properties"]["templateFile"])
    template = json.load(open(template_path))
    unsupported = {v["Type"] for v in template["Resources"].values()} - moto_types()
    if unsupported != MOTO_UNSUPPORTED:
        fail("the template's types moto cannot create are %s, expected %s (update MOTO_UNSUPPORTED and docs/deploy.md)"
             % (sorted(unsupported), sorted(MOTO_UNSUPPORTED)))
    deployable, removed = strip(template, MOTO_UNSUPPORTED)
    assets = json.load(open(os.path.join(out, name + ".assets.json")))

    port = free_port()
    endpoint = "http://127.0.0.1:%d" % port
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                       "AWS_EC2_METADATA_DISABLED": "true"})
    log = open(os.path.join(out, "moto-server.log"), "wb")
    moto = start_moto(port, log)
    began = time.monotonic()
    try:
        client = lambda svc: boto3.client(svc, region_name=REGION, endpoint_url=endpoint)
        # 2. What `cdk bootstrap` leaves behind.
        client("ssm").put_parameter(Name="/cdk-bootstrap/%s/version" % QUALIFIER, Value="30", Type="String")
        bucket = "cdk-%s-assets-%s-%s" % (QUALIFIER, ACCOUNT, REGION)
        s3 = client("s3")
        s3.create_bucket(Bucket=bucket)
        # 3. Assets and template.
        sizes = {}
        for h, a in assets["files"].items():
            src = os.path.join(out, a["source"]["path"])
            body = zip_dir(src) if a["source"].get("packaging") == "zip" else open(src, "rb").read()
            for d in a["destinations"].values():
                s3.put_object(Bucket=sub(d["bucketName"]), Key=d["objectKey"], Body=body)
                sizes[d["objectKey"]] = len(body)
        s3.put_object(Bucket=bucket, Key="template.json", Body=json.dumps(deployable).encode())
        # 4. The stack.
        cfn = client("cloudformation")
        cfn.create_stack(StackName=name, TemplateURL="https://%s.s3.amazonaws.com/template.json" % bucket,
                         Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])
        deadline = time.monotonic() + STACK_TIMEOUT
        while True:
            st = cfn.describe_stacks(StackName=name)["Stacks"][0]
            if st["StackStatus"] == "CREATE_COMPLETE":
                break
            if not st["StackStatus"].endswith("IN_PROGRESS"):
                events = cfn.describe_stack_events(StackName=name)["StackEvents"]
                bad = ["%s %s: %s" % (e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", ""))
                       for e in events if "FAILED" in e["ResourceStatus"]]
                fail("stack %s: %s\n  %s" % (name, st["StackStatus"], "\n  ".join(bad)))
            if time.monotonic() > deadline:
                fail("stack %s still %s after %d s" % (name, st["StackStatus"], STACK_TIMEOUT))
            time.sleep(1)
        created = time.monotonic() - began
        phys = check(client, cfn, name, deployable, sizes)
        alarms = put_alarms(client("cloudwatch"), removed, phys)
        print("deploy-smoke: ok: %s created on moto_server in %.1f s: %d of %d resources through CloudFormation, "
              "%d alarms through PutMetricAlarm; not created (moto implements no %s): %d"
              % (name, created, len(deployable["Resources"]), len(template["Resources"]), alarms,
                 ", ".join(sorted(MOTO_UNSUPPORTED - {"AWS::CloudWatch::Alarm"})), len(removed) - alarms))
    finally:
        moto.terminate()
        try:
            moto.wait(timeout=10)
        except subprocess.TimeoutExpired:
            moto.kill()
        log.close()


def check(client, cfn, name, template, sizes):
    """Checks the stack's resources through each service's API; returns physical ids."""
    res = template["Resources"]
    phys = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cfn.describe_stack_resources(StackName=name)["StackResources"]}
    of_type = lambda t: sorted(k for k, v in res.items() if v["Type"] == t)
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    need(set(phys) == set(res), "stack resources %s differ from the template's" % sorted(set(phys) ^ set(res)))
    # Table.
    [table_id] = of_type("AWS::DynamoDB::Table")
    t = client("dynamodb").describe_table(TableName=phys[table_id])["Table"]
    need([k["AttributeName"] for k in t["KeySchema"]] == ["PK", "SK"], "table key schema %s" % t["KeySchema"])
    need(sorted(i["IndexName"] for i in t.get("GlobalSecondaryIndexes", [])) == ["GSI1", "GSI2"], "table indexes")
    need(t.get("StreamSpecification", {}).get("StreamViewType") == "NEW_AND_OLD_IMAGES", "table stream")
    # Functions, their code from the uploaded assets.
    lam = client("lambda")
    for fid in of_type("AWS::Lambda::Function"):
        f = lam.get_function(FunctionName=phys[fid])["Configuration"]
        props = res[fid]["Properties"]
        # moto's CloudFormation drops Architectures (every function is x86_64 there); the
        # template's arm64 is asserted by the stack's own tests.
        need(f["Runtime"] == "provided.al2023" and f["Handler"] == "bootstrap", "%s runtime %s" % (fid, f["Runtime"]))
        key = props["Code"]["S3Key"]
        need(f["CodeSize"] == sizes[key], "%s code size %s, asset %s" % (fid, f["CodeSize"], sizes[key]))
        need(f["Environment"]["Variables"].get("TABLE_NAME") == phys[table_id], "%s TABLE_NAME" % fid)
    # Stream mapping on the table's stream: retries, age, filter and DLQ as the template says.
    [q_id] = of_type("AWS::SQS::Queue")
    maps = lam.list_event_source_mappings()["EventSourceMappings"]
    need(len(maps) == 1 and maps[0]["EventSourceArn"] == t["LatestStreamArn"], "stream mapping %s" % maps)
    if maps:
        m, want = maps[0], res[of_type("AWS::Lambda::EventSourceMapping")[0]]["Properties"]
        for key in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
                    "FunctionResponseTypes", "StartingPosition", "BatchSize", "FilterCriteria"):
            need(m.get(key) == want.get(key), "stream mapping %s = %r, template %r" % (key, m.get(key), want.get(key)))
        need(m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination", "").endswith(
            phys[q_id].rsplit("/", 1)[-1]), "stream mapping on-failure destination %s" % m.get("DestinationConfig"))
    # Queue, roles, managed policies, log groups, dashboard, outputs.
    need(client("sqs").get_queue_attributes(QueueUrl=phys[q_id], AttributeNames=["All"]).get("Attributes"), "DLQ")
    iam = client("iam")
    for rid in of_type("AWS::IAM::Role"):
        need(iam.get_role(RoleName=phys[rid])["Role"], "role %s" % rid)
    managed = {p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}
    need(all(phys[k] in managed for k in of_type("AWS::IAM::ManagedPolicy")), "managed policies %s" % managed)
    groups = {g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]}
    need(all(phys[k] in groups for k in of_type("AWS::Logs::LogGroup")), "log groups %s" % sorted(groups))
    dashboards = {d["DashboardName"] for d in client("cloudwatch").list_dashboards()["DashboardEntries"]}
    need(all(phys[k] in dashboards for k in of_type("AWS::CloudWatch::Dashboard")), "dashboards %s" % dashboards)
    outputs = {o["OutputKey"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])}
    need(outputs == set(template.get("Outputs", {})), "outputs %s" % sorted(outputs))
    if problems:
        fail("; ".join(problems))
    return phys


def resolve(x, phys):
    """Resolves Ref and Fn::GetAtt (QueueName, Arn) of created resources in alarm properties."""
    if isinstance(x, dict):
        if set(x) == {"Ref"}:
            # The API is not created on moto: its alarms name a placeholder id.
            return phys.get(x["Ref"], "moto-unsupported-" + x["Ref"])
        if set(x) == {"Fn::GetAtt"}:
            res, attr = x["Fn::GetAtt"]
            if attr == "QueueName":
                return phys[res].rsplit("/", 1)[-1]
            return phys[res]
        return {k: resolve(v, phys) for k, v in x.items()}
    if isinstance(x, list):
        return [resolve(v, phys) for v in x]
    return x


def put_alarms(cw, removed, phys):
    """Creates the template's alarms through PutMetricAlarm; returns how many."""
    keys = ("AlarmDescription", "ComparisonOperator", "DatapointsToAlarm", "EvaluationPeriods", "Threshold",
            "TreatMissingData", "Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic",
            "Period", "Metrics", "AlarmActions", "OKActions")
    n = 0
    for k, v in sorted(removed.items()):
        if v["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = resolve(v["Properties"], phys)
        args = {key: p[key] for key in keys if key in p}
        for i in ("DatapointsToAlarm", "EvaluationPeriods", "Period"):
            if i in args:
                args[i] = int(args[i])
        for m in args.get("Metrics", []):
            if "MetricStat" in m:
                m["MetricStat"]["Period"] = int(m["MetricStat"]["Period"])
        cw.put_metric_alarm(AlarmName=k, **args)
        n += 1
    names = {a["AlarmName"] for a in cw.describe_alarms(MaxRecords=100)["MetricAlarms"]}
    if len(names) != n:
        fail("%d alarms put, %d described" % (n, len(names)))
    return n


if __name__ == "__main__":
    main()
