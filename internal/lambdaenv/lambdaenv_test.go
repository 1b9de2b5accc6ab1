package lambdaenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/zeroae/zae-limiter-go/internal/lambdaenv"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	e, err := lambdaenv.Load(env(map[string]string{
		"TABLE_NAME": "limits", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID",
		"AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := e.AWS.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKID" || creds.SessionToken != "token" || e.AWS.Region != "eu-west-1" || e.Table != "limits" {
		t.Fatalf("env %+v creds %+v %v", e, creds, err)
	}
	if ep := e.DynamoDB.Options().BaseEndpoint; ep == nil || *ep != "http://127.0.0.1:8000" {
		t.Fatalf("endpoint %v", ep)
	}
	if e.Function != "local" || e.Metrics.Namespace() != "ZaeLimiter" {
		t.Fatalf("outside Lambda: function %q namespace %q", e.Function, e.Metrics.Namespace())
	}
	e, err = lambdaenv.Load(env(map[string]string{
		"TABLE_NAME": "limits", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_LAMBDA_FUNCTION_NAME": "zl-acquire", "METRICS_NAMESPACE": "Limits/Prod",
	}))
	if err != nil || e.Function != "zl-acquire" || e.Metrics.Namespace() != "Limits/Prod" {
		t.Fatalf("in Lambda: %v function %q namespace %q", err, e.Function, e.Metrics.Namespace())
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := lambdaenv.Load(env(map[string]string{}))
	if err == nil {
		t.Fatal("empty environment accepted")
	}
	for _, want := range []string{"TABLE_NAME", "AWS_REGION", "AWS_ACCESS_KEY_ID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
