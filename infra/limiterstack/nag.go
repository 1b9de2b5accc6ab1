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
	suppress := func(c constructs.IConstruct, id, reason string, appliesTo ...string) {
		sup := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
		if len(appliesTo) > 0 {
			list := make([]interface{}, len(appliesTo))
			for i, a := range appliesTo {
				list[i] = a
			}
			sup.AppliesTo = &list
		}
		cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{sup}, jsii.Bool(true))
	}

	// SQS3 wants every queue to have a redrive DLQ. This queue is itself the dead-letter
	// destination of the aggregator's stream mapping (an OnFailure destination, which cdk-nag
	// does not recognize as DLQ use); a DLQ behind it would only hold the same messages again,
	// and the AggregatorDLQMessages alarm fires on its first message.
	suppress(s.DeadLetterQueue, "AwsSolutions-SQS3",
		"The queue is the on-failure (dead-letter) destination of the aggregator's DynamoDB stream mapping; it is alarmed on its first message")

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
