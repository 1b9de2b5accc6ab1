package usage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/zeroae/zae-limiter-go/internal/ddbtest"
)

func TestScratch(t *testing.T) {
	ctx := context.Background()
	c := ddbtest.Client(t)
	tbl := ddbtest.NewTable(t, c)
	name := aws.String(tbl.Name())
	key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "U#x"}, "SK": &types.AttributeValueMemberS{Value: "U#y"}}
	// create
	_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: name, Key: key,
		UpdateExpression:    aws.String("SET #c = :m, #seq = :s ADD #a :one"),
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
		ExpressionAttributeNames: map[string]string{"#c": "counters", "#seq": "seq", "#a": "acquires"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
			":s": &types.AttributeValueMemberS{Value: "0005"}, ":one": &types.AttributeValueMemberN{Value: "1"}}})
	fmt.Println("create", err)
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: name, Key: key,
		UpdateExpression:    aws.String("SET #c.#n = if_not_exists(#c.#n, :z) + :v, #seq = :s ADD #a :one"),
		ConditionExpression: aws.String("#seq < :first"),
		ExpressionAttributeNames: map[string]string{"#c": "counters", "#seq": "seq", "#a": "acquires", "#n": "rpm"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":z": &types.AttributeValueMemberN{Value: "0"}, ":v": &types.AttributeValueMemberN{Value: "12345678901234567890"},
			":s": &types.AttributeValueMemberS{Value: "0009"}, ":first": &types.AttributeValueMemberS{Value: "0006"}, ":one": &types.AttributeValueMemberN{Value: "1"}},
		ReturnValues: types.ReturnValueAllNew})
	fmt.Println("update", err)
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: name, Key: key,
		UpdateExpression:    aws.String("SET #c.#n = if_not_exists(#c.#n, :z) + :v, #seq = :s ADD #a :one"),
		ConditionExpression: aws.String("#seq < :first"),
		ExpressionAttributeNames: map[string]string{"#c": "counters", "#seq": "seq", "#a": "acquires", "#n": "rpm"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":z": &types.AttributeValueMemberN{Value: "0"}, ":v": &types.AttributeValueMemberN{Value: "5"},
			":s": &types.AttributeValueMemberS{Value: "0009"}, ":first": &types.AttributeValueMemberS{Value: "0006"}, ":one": &types.AttributeValueMemberN{Value: "1"}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	fmt.Printf("update2 %v\n", err)
	// ADD on nested path
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: name, Key: key,
		UpdateExpression:    aws.String("ADD #c.#n :v"),
		ExpressionAttributeNames: map[string]string{"#c": "counters", "#n": "tpm"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: "5"}}})
	fmt.Printf("nested add %v\n", err)
	// update of missing item -> condition fail with empty item
	key2 := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "U#x"}, "SK": &types.AttributeValueMemberS{Value: "U#z"}}
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: name, Key: key2,
		UpdateExpression:    aws.String("SET #c.#n = if_not_exists(#c.#n, :z) + :v"),
		ConditionExpression: aws.String("#seq < :first"),
		ExpressionAttributeNames: map[string]string{"#c": "counters", "#seq": "seq", "#n": "rpm"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":z": &types.AttributeValueMemberN{Value: "0"}, ":v": &types.AttributeValueMemberN{Value: "5"},
			":first": &types.AttributeValueMemberS{Value: "0006"}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	fmt.Printf("missing %T %v\n", err, err)
	out, _ := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: name, Key: key})
	fmt.Printf("%#v\n", out.Item["counters"])

	// streams
	sc := dynamodbstreams.New(dynamodbstreams.Options{Region: "us-east-1", BaseEndpoint: aws.String(ddbtest.Endpoint(t)),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	ls, err := sc.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: name})
	fmt.Println(err)
	arn := ls.Streams[0].StreamArn
	fmt.Println(*arn)
	ds, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: arn})
	for _, sh := range ds.StreamDescription.Shards {
		fmt.Printf("shard %s parent %v range %v-%v\n", *sh.ShardId, aws.ToString(sh.ParentShardId), aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber), aws.ToString(sh.SequenceNumberRange.EndingSequenceNumber))
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: arn, ShardId: sh.ShardId, ShardIteratorType: st.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		gr, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range gr.Records {
			fmt.Printf("%s %s %s %v %s %v\n", r.EventName, aws.ToString(r.EventID), aws.ToString(r.Dynamodb.SequenceNumber), r.Dynamodb.ApproximateCreationDateTime, aws.ToString(r.EventSource), aws.ToString(r.AwsRegion))
			fmt.Printf("  %v %v %v\n", r.Dynamodb.StreamViewType, r.Dynamodb.SizeBytes, r.UserIdentity)
		}
		fmt.Println("next", gr.NextShardIterator != nil)
		gr2, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: gr.NextShardIterator})
		fmt.Println(len(gr2.Records), err)
		if len(gr.Records) > 0 {
			it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: arn, ShardId: sh.ShardId, ShardIteratorType: st.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: gr.Records[0].Dynamodb.SequenceNumber})
			fmt.Println(err)
			gr3, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
			fmt.Println(len(gr3.Records), err)
		}
	}
	_ = time.Now
}
