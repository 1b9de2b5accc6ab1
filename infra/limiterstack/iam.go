package limiterstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// TableGrant is one statement of a function's access to the table: actions, on the table (and
// its indexes when Indexes is set), restricted to partitions when Partitions is set.
type TableGrant struct {
	// Sid is the statement id.
	Sid string
	// Actions are DynamoDB actions, each one the function's code calls (TestGrantsMatchCode
	// derives them from the code by static analysis).
	Actions []string
	// Indexes also grants the actions on GSI1 and GSI2 (by name, no index/*).
	Indexes bool
	// Partitions, when not empty, are dynamodb:LeadingKeys patterns (StringLike: "E#*" for a
	// prefix, "SYSTEM" for one key): every partition a request touches must match one of them.
	Partitions []string
}

// Partition patterns (dynamodb:LeadingKeys, StringLike) of the items each function writes; the
// key layout (shared/storage keys.go, docs/design.md) puts each writer's items in partitions of
// their own. Adding an item type written by a function is one more pattern here.
var (
	// AcquireWritablePartitions are bucket and lease partitions.
	AcquireWritablePartitions = []string{"B#*", "LEASE#*"}
	// AdminWritablePartitions are entity (metadata and stored limits), resource-limit,
	// system-limit and audit-record partitions (each admin change writes its record in the same
	// transaction): never buckets, leases or usage snapshots (the billing record).
	AdminWritablePartitions = []string{"E#*", "R#*", "SYSTEM", "AUDIT#*"}
	// AdminBucketCleanupPartitions are what the admin function's BatchWriteItem may touch besides
	// AdminWritablePartitions: deleting an entity deletes its buckets in batches. IAM cannot
	// tell a batch's deletes from its puts; the admin role has no other write there.
	AdminBucketCleanupPartitions = []string{"B#*"}
	// AggregatorWritablePartitions are usage snapshot partitions.
	AggregatorWritablePartitions = []string{"U#*"}
)

// StreamReadActions are what Lambda's event source mapping needs on a DynamoDB stream, under
// the aggregator's role (the function's code reads no stream itself).
var StreamReadActions = []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}

// TableGrants returns each function's table statements. Every action is one its code calls (a
// TransactWriteItems item is authorized as its item action: Put → PutItem, Update → UpdateItem,
// Delete → DeleteItem); no role gets Scan, DescribeTable, dynamodb:* or a DynamoDB action on "*".
func TableGrants() map[string][]TableGrant {
	return map[string][]TableGrant{
		// acquire: reads stored limits, entities, buckets and leases by key; writes buckets
		// (UpdateItem, alone or in a transaction) and leases (Put when created, Update when
		// adjusted or settled, in the bucket transaction).
		FunctionAcquire: {
			{Sid: "ReadItems", Actions: []string{"dynamodb:GetItem", "dynamodb:BatchGetItem"}},
			{Sid: "WriteBucketAndLeasePartitions", Actions: []string{"dynamodb:PutItem", "dynamodb:UpdateItem"},
				Partitions: AcquireWritablePartitions},
		},
		// admin: reads items, lists partitions (entity deletion, usage) and queries the indexes
		// (children of a parent, usage per resource); writes entities and stored limits (an
		// entity's limits on the condition, checked in the transaction, that the entity is
		// stored); deletes a deleted entity's buckets.
		FunctionAdmin: {
			{Sid: "ReadTableAndIndexes", Actions: []string{"dynamodb:GetItem", "dynamodb:Query"}, Indexes: true},
			{Sid: "WriteEntityAndLimitPartitions",
				Actions:    []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"},
				Partitions: AdminWritablePartitions},
			{Sid: "DeleteBucketsOfDeletedEntities", Actions: []string{"dynamodb:BatchWriteItem"},
				Partitions: AdminBucketCleanupPartitions},
		},
		// aggregator: one conditional UpdateItem per usage snapshot; it reads nothing from the
		// table (the stream records carry the images).
		FunctionAggregator: {
			{Sid: "WriteUsagePartitions", Actions: []string{"dynamodb:UpdateItem"}, Partitions: AggregatorWritablePartitions},
		},
	}
}

// LeadingKeysCondition returns the condition that every partition key a request touches matches
// one of patterns. ForAllValues alone is true for a request that names no partition key at all
// (the set of keys is empty), so a Null guard requires the key to be present.
func LeadingKeysCondition(patterns []string) map[string]interface{} {
	return map[string]interface{}{
		"ForAllValues:StringLike": map[string]interface{}{"dynamodb:LeadingKeys": jsii.Strings(patterns...)},
		"Null":                    map[string]interface{}{"dynamodb:LeadingKeys": "false"},
	}
}

func (s *LimiterStack) grantTableAccess() {
	table := *s.Table.TableArn()
	// The two indexes by name rather than index/*: no wildcard at all.
	indexes := []string{table + "/index/" + IndexGSI1, table + "/index/" + IndexGSI2}
	grants := TableGrants()
	for _, fn := range FunctionNames { // in a fixed order: the template must not change between runs
		for _, g := range grants[fn] {
			resources := []string{table}
			if g.Indexes {
				resources = append(resources, indexes...)
			}
			props := &awsiam.PolicyStatementProps{
				Sid:       jsii.String(g.Sid),
				Actions:   jsii.Strings(g.Actions...),
				Resources: jsii.Strings(resources...),
			}
			if len(g.Partitions) > 0 {
				cond := LeadingKeysCondition(g.Partitions)
				props.Conditions = &cond
			}
			s.Roles[fn].AddToPolicy(awsiam.NewPolicyStatement(props))
		}
	}
	// The aggregator's event source mapping reads the stream with the function's role.
	s.Roles[FunctionAggregator].AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadStream"),
		Actions:   jsii.Strings(StreamReadActions...),
		Resources: jsii.Strings(*s.Table.TableStreamArn()),
	}))
}
