#!/usr/bin/env bash
# The seeds' AWS CLI commands for the ECS rollback step ("Service Completely Down" and the ECS Fargate plan,
# sections 2, 3 and 5), as a responder would paste them: check the service and its targets, find the last good
# revision, update the service to it, wait until stable, check the targets again.
#   bench/cli/ecs_rollback.sh CLUSTER SERVICE        (AWS_ENDPOINT_URL and credentials from the environment)
set -euo pipefail
cluster=$1 service=$2
read -r current tg < <(aws ecs describe-services --cluster "$cluster" --services "$service" \
  --query 'services[0].[taskDefinition, loadBalancers[0].targetGroupArn]' --output text)
aws elbv2 describe-target-health --target-group-arn "$tg" >/dev/null
family_revision=${current##*/}
family=${family_revision%:*} revision=${family_revision##*:}
good=$(aws ecs list-task-definitions --family-prefix "$family" --status ACTIVE --output text \
  --query 'taskDefinitionArns[]' | tr '\t' '\n' | awk -F: -v r="$revision" '$NF < r' | sort -t: -k7 -n | tail -1)
aws ecs update-service --cluster "$cluster" --service "$service" --task-definition "$good" >/dev/null
aws ecs wait services-stable --cluster "$cluster" --services "$service"
aws elbv2 describe-target-health --target-group-arn "$tg" >/dev/null
