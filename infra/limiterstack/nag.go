package limiterstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// CheckAwsSolutions adds cdk-nag's AwsSolutions rule pack to scope: at synthesis every finding
// that is not suppressed (with a reason, in addNagSuppressions) becomes an error annotation, and
// `cdk synth` fails.
func CheckAwsSolutions(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
		Verbose: jsii.Bool(true),
		// Findings surface as annotations (and fail `cdk synth`); no CSV reports in cdk.out.
		Reports: jsii.Bool(false),
	}), nil)
}

// addNagSuppressions records, next to the resources concerned, why each remaining AwsSolutions
// finding does not apply. The suppressions are metadata: harmless when cdk-nag does not run.
func (s *LimiterStack) addNagSuppressions() {
	suppress := func(c constructs.IConstruct, id, reason string, appliesTo ...interface{}) {
		sup := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
		if len(appliesTo) > 0 {
			sup.AppliesTo = &appliesTo
		}
		cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{sup}, jsii.Bool(true))
	}

	// SQS3 wants every queue to have a redrive DLQ. This queue is itself the dead-letter
	// destination of the aggregator's stream mapping (an OnFailure destination, which cdk-nag
	// does not recognize as DLQ use); a DLQ behind it would only hold the same messages again,
	// and the AggregatorDLQMessages alarm fires on its first message.
	suppress(s.DeadLetterQueue, "AwsSolutions-SQS3",
		"The queue is the on-failure (dead-letter) destination of the aggregator's DynamoDB stream mapping; it is alarmed on its first message")

	// IAM5 flags every "*" in a resource. In an execute-api ARN a * stands for one path
	// parameter ({lease_id}, {proxy+}) or for every method of an ANY route: the policies name
	// this API, this stage and each route's path, nothing wider. The regex accepts only this
	// stack's API ARNs, whose last parts are a method and a /v1/ path.
	executeAPI := &cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<Api[0-9A-F]{8}>\/[^/]+\/(POST|\*)\/v1\/[a-z-]+(\/\*)*$/g`)}
	suppress(s.AcquireCallerPolicy, "AwsSolutions-IAM5",
		"execute-api:Invoke on the acquire routes of this API and stage; * is the {lease_id} and {action} path parameters of /v1/leases/{lease_id}/{action}", executeAPI)
	suppress(s.AdminPolicy, "AwsSolutions-IAM5",
		"execute-api:Invoke on the admin routes of this API and stage; * is the method of the ANY routes and the {proxy+} path below /v1/entities, /v1/resources, /v1/system", executeAPI)

	if s.Props.Tracing {
		// Active tracing makes CDK grant xray:PutTraceSegments and xray:PutTelemetryRecords,
		// which support no resource-level permissions: "*" is the only possible resource.
		for _, name := range FunctionNames {
			suppress(s.Roles[name], "AwsSolutions-IAM5",
				"X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (added by active tracing)",
				"Resource::*")
		}
	}
}
