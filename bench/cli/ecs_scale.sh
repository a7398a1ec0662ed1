#!/usr/bin/env bash
# The seeds' AWS CLI commands for the ECS scale-out step ("Service Completely Down": "Scale up if resource
# exhaustion"), with the checks around them.
#   bench/cli/ecs_scale.sh CLUSTER SERVICE DESIRED_COUNT
set -euo pipefail
cluster=$1 service=$2 count=$3
tg=$(aws ecs describe-services --cluster "$cluster" --services "$service" \
  --query 'services[0].loadBalancers[0].targetGroupArn' --output text)
aws elbv2 describe-target-health --target-group-arn "$tg" >/dev/null
aws ecs update-service --cluster "$cluster" --service "$service" --desired-count "$count" >/dev/null
aws ecs wait services-stable --cluster "$cluster" --services "$service"
aws elbv2 describe-target-health --target-group-arn "$tg" >/dev/null
