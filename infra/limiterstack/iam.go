package limiterstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// DynamoDB actions granted to the functions. No role gets dynamodb:* or Scan, and no DynamoDB
// action is granted on "*".
var (
	// TableReadActions read items by key or key range.
	TableReadActions = []string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}
	// PartitionWriteActions write single items; restricted by dynamodb:LeadingKeys for the
	// acquire and aggregator functions. TransactWriteItems has no action of its own: each item
	// of a transaction is authorized as the corresponding item action.
	PartitionWriteActions = []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
	// AggregatorWriteActions add BatchWriteItem (snapshot writes in bulk) to PartitionWriteActions.
	AggregatorWriteActions = append(append([]string{}, PartitionWriteActions...), "dynamodb:BatchWriteItem")
	// AdminReadActions are what the admin function may do on the table and its indexes.
	AdminReadActions = []string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"}
	// AdminWriteActions are what the admin function may write, in any partition (deleting an
	// entity also removes its buckets and snapshots).
	AdminWriteActions = []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"}
	// StreamReadActions are what a Lambda event source mapping needs on a DynamoDB stream.
	StreamReadActions = []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
)

// leadingKeys returns the condition that every partition key a request touches starts with one
// of prefixes. ForAllValues: a request naming any other partition is denied.
func leadingKeys(prefixes []string) *map[string]interface{} {
	patterns := make([]*string, len(prefixes))
	for i, p := range prefixes {
		patterns[i] = jsii.String(p + "*")
	}
	return &map[string]interface{}{
		"ForAllValues:StringLike": map[string]interface{}{"dynamodb:LeadingKeys": patterns},
	}
}

func (s *LimiterStack) grantTableAccess() {
	table := *s.Table.TableArn()
	// The two indexes by name rather than index/*: no wildcard at all.
	indexes := []string{table + "/index/" + IndexGSI1, table + "/index/" + IndexGSI2}
	stream := *s.Table.TableStreamArn()
	stmt := func(sid string, actions []string, resources []string, condition *map[string]interface{}) awsiam.PolicyStatement {
		return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String(sid),
			Actions:    jsii.Strings(actions...),
			Resources:  jsii.Strings(resources...),
			Conditions: condition,
		})
	}

	// acquire: reads limits, entities and buckets by key; writes buckets and leases only.
	acquire := s.Roles[FunctionAcquire]
	acquire.AddToPolicy(stmt("ReadTable", TableReadActions, []string{table}, nil))
	acquire.AddToPolicy(stmt("WriteBucketAndLeasePartitions", PartitionWriteActions, []string{table}, leadingKeys(AcquireWritablePrefixes)))

	// admin: reads and writes the whole table, and queries its indexes (children of a parent,
	// usage per resource).
	admin := s.Roles[FunctionAdmin]
	admin.AddToPolicy(stmt("ReadTableAndIndexes", AdminReadActions, append([]string{table}, indexes...), nil))
	admin.AddToPolicy(stmt("WriteTable", AdminWriteActions, []string{table}, nil))

	// aggregator: reads the stream and the table; writes snapshots and its own state only.
	aggregator := s.Roles[FunctionAggregator]
	aggregator.AddToPolicy(stmt("ReadStream", StreamReadActions, []string{stream}, nil))
	aggregator.AddToPolicy(stmt("ReadTable", TableReadActions, []string{table}, nil))
	aggregator.AddToPolicy(stmt("WriteUsageAndAggregatorPartitions", AggregatorWriteActions, []string{table}, leadingKeys(AggregatorWritablePrefixes)))
}
