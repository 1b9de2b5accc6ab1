# mk/infra.mk: the CDK app in infra/ (a Go module of its own). Included by the root Makefile,
# which provides `build` (bin/acquire/bootstrap, bin/admin/bootstrap, bin/aggregator/bootstrap).
#
#   make cdk-deps     install the CDK CLI into .local/cdk (npm; outside every Go module tree)
#   make synth        build the functions, write cdk.out/ offline (no AWS account needed), cfn-lint it
#   make deploy-smoke create the synthesized stack on a local moto_server (after make synth)
#   make bootstrap    cdk bootstrap, once per account and region (needs AWS credentials)
#   make diff         cdk diff against the deployed stack (needs AWS credentials)
#   make deploy       cdk deploy (needs AWS credentials and a bootstrapped account/region)
#   make destroy      cdk destroy; retained resources stay (docs/deploy.md, "Tearing down")
#   make test-infra   assertion tests of the stack (go test in infra/; needs node on PATH)
#   make vet-infra    gofmt and go vet of infra/
#
# Extra CDK arguments go in CDK_ARGS, e.g. make deploy CDK_ARGS='-c tableName=limits -c alarmTopicArn=arn:...'

CDK_VERSION    ?= 2.1148.1
CDK_DIR        ?= .local/cdk
CDK            := $(CDK_DIR)/node_modules/.bin/cdk
CDK_OUT        ?= cdk.out
CDK_ASSET_ROOT ?= $(CURDIR)/bin
CDK_ARGS       ?=
CFN_LINT       ?= cfn-lint
PYTHON         ?= python3
# Bound on the deploy smoke test (moto_server start, stack creation, checks): seconds.
SMOKE_TIMEOUT  ?= 600
INFRA_DIR      := infra
INFRA_TEST_FLAGS ?=
GO ?= go

# Quiet, local CDK: no version check, no telemetry, no Node end-of-life banner from jsii.
CDK_ENV := CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
# Offline synth additionally keeps the AWS SDK from probing the EC2 instance metadata service for
# a region or credentials; the stack is env-agnostic and needs neither.
CDK_OFFLINE_ENV := $(CDK_ENV) AWS_EC2_METADATA_DISABLED=true

# The stamp records the installed CLI version, so changing CDK_VERSION reinstalls.
CDK_STAMP := $(CDK_DIR)/.aws-cdk-$(CDK_VERSION)

.PHONY: cdk-deps synth lint-template deploy-smoke bootstrap diff deploy destroy test-infra vet-infra clean-infra

cdk-deps: $(CDK_STAMP)

$(CDK_STAMP):
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ to use the CDK CLI" >&2; exit 1; }
	npm install --prefix $(CDK_DIR) --no-audit --no-fund --no-save --no-package-lock aws-cdk@$(CDK_VERSION)
	rm -f $(CDK_DIR)/.aws-cdk-*
	touch $@

synth: build cdk-deps
	$(CDK_OFFLINE_ENV) $(CDK) synth --quiet --no-notices --no-version-reporting --no-lookups \
		--output $(CDK_OUT) -c assetRoot=$(CDK_ASSET_ROOT) $(CDK_ARGS)
	@echo "synthesized into $(CDK_OUT)/"
	@$(MAKE) --no-print-directory lint-template

# cfn-lint (Python; on these machines) must report nothing: no error, no warning. Where it is
# not installed the check is reported as not run, not passed.
lint-template:
	@if command -v $(CFN_LINT) >/dev/null; then \
	  $(CFN_LINT) --version; $(CFN_LINT) $(CDK_OUT)/*.template.json && echo "cfn-lint: no errors, no warnings"; \
	else echo "cfn-lint not found: template NOT linted (pip install cfn-lint)"; fi

# The synthesized stack created through CloudFormation on moto_server: see scripts/deploy-smoke.py
# for what is checked and what moto cannot create.
deploy-smoke:
	@[ -f $(CDK_OUT)/manifest.json ] || { echo "no $(CDK_OUT)/manifest.json: run make synth first" >&2; exit 2; }
	@$(PYTHON) -c 'import moto.server, boto3' 2>/dev/null || { echo "deploy-smoke needs $(PYTHON) with moto[server] and boto3" >&2; exit 2; }
	timeout --kill-after=10 $(SMOKE_TIMEOUT) $(PYTHON) scripts/deploy-smoke.py $(CDK_OUT)

bootstrap: cdk-deps
	$(CDK_ENV) $(CDK) bootstrap --no-notices $(CDK_ARGS)

diff: build cdk-deps
	$(CDK_ENV) $(CDK) diff --no-notices --no-version-reporting -c assetRoot=$(CDK_ASSET_ROOT) $(CDK_ARGS)

deploy: build cdk-deps
	$(CDK_ENV) $(CDK) deploy --no-notices --no-version-reporting --require-approval broadening \
		-c assetRoot=$(CDK_ASSET_ROOT) $(CDK_ARGS)

# Deletes the stack. The table, log groups and DLQ are retained unless the stack was deployed
# with -c removalPolicy=destroy, and a production stack is termination protected: see
# docs/deploy.md, "Tearing down".
destroy: build cdk-deps
	$(CDK_ENV) $(CDK) destroy --no-notices -c assetRoot=$(CDK_ASSET_ROOT) $(CDK_ARGS)

# The tests write placeholder bootstraps to a temp dir: they need neither `build` nor the CLI,
# only node on PATH for the jsii runtime.
test-infra: cdk-deps
	cd $(INFRA_DIR) && $(CDK_OFFLINE_ENV) $(GO) test $(INFRA_TEST_FLAGS) ./...

vet-infra:
	@out=$$(cd $(INFRA_DIR) && gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	cd $(INFRA_DIR) && $(GO) vet ./...

clean-infra:
	rm -rf $(CDK_OUT) $(INFRA_DIR)/cdk.out
