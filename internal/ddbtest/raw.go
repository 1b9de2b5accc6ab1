package ddbtest

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// RawAcquire returns the UpdateItem a hand-written limiter of this project's design sends for
// one acquire of two limits (rpm 1, tpm 500) of entity key: per limit an ADD of the state and
// of the consumed counter under floor, ceiling and parameter conditions, the acquire counter
// and the write time, ALL_NEW back. Benchmarks use it as the floor an acquire pays. Its bounds
// are constants, so it never refuses.
func RawAcquire(table, key string) *dynamodb.UpdateItemInput {
	n := func(v string) *types.AttributeValueMemberN { return &types.AttributeValueMemberN{Value: v} }
	const params = "1000000000000000/1000000000000000/60000"
	return &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: "B#raw-" + key}, "SK": &types.AttributeValueMemberS{Value: "B#gpt-4"},
		},
		UpdateExpression: aws.String("SET #ts = :ts, #k0 = :k0, #k1 = :k1 ADD #e0 :v0, #u0 :c0, #e1 :v1, #u1 :c1, #acq :one"),
		ConditionExpression: aws.String("(attribute_not_exists(#k0) OR (#k0 = :k0 AND #e0 >= :min AND #e0 <= :max)) AND " +
			"(attribute_not_exists(#k1) OR (#k1 = :k1 AND #e1 >= :min AND #e1 <= :max))"),
		ExpressionAttributeNames: map[string]string{"#ts": "ts", "#acq": "acq",
			"#e0": "e#rpm", "#k0": "k#rpm", "#u0": "u#rpm", "#e1": "e#tpm", "#k1": "k#tpm", "#u1": "u#tpm"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":ts": n(strconv.FormatInt(time.Now().UnixMilli(), 10)), ":one": n("1"),
			":k0": &types.AttributeValueMemberS{Value: params}, ":k1": &types.AttributeValueMemberS{Value: params},
			":v0": n("60000000"), ":c0": n("1000"), ":v1": n("30000000000"), ":c1": n("500000"),
			":min": n("-1000000000000000000000000000000"), ":max": n("1000000000000000000000000000000"),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// RawIdempotentAcquire is RawAcquire with what makes a bucket write exact under resends and
// orderable on the stream, as the limiter's writes are: the item's version (`v`, raised by
// one), the write id writeID under the writer's lane (SET, on the condition that the lane
// holds another id) and UPDATED_NEW back. Benchmarks use it to tell what idempotence costs
// DynamoDB from what the library adds.
func RawIdempotentAcquire(table, key, lane, writeID string) *dynamodb.UpdateItemInput {
	in := RawAcquire(table, key)
	in.Key["PK"] = &types.AttributeValueMemberS{Value: "B#rawid-" + key}
	in.UpdateExpression = aws.String("SET #ver = if_not_exists(#ver, :ver0) + :one, #w = :w, " + (*in.UpdateExpression)[len("SET "):])
	in.ConditionExpression = aws.String(*in.ConditionExpression + " AND (attribute_not_exists(#w) OR #w <> :w)")
	in.ExpressionAttributeNames["#ver"], in.ExpressionAttributeNames["#w"] = "v", "w#"+lane
	in.ExpressionAttributeValues[":ver0"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixMilli()*1_000_000, 10)}
	in.ExpressionAttributeValues[":w"] = &types.AttributeValueMemberS{Value: writeID}
	in.ReturnValues = types.ReturnValueUpdatedNew
	return in
}
