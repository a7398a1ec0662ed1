#!/usr/bin/env bash
# The seeds' AWS CLI commands for the ECS restart step ("Service Completely Down": "Restart unhealthy tasks";
# "Database Unavailable": "Restart backend services to reset connections"), with the checks around them.
#   bench/cli/ecs_restart.sh CLUSTER SERVICE
set -euo pipefail
cluster=$1 service=$2
tg=$(aws ecs describe-services --cluster "$cluster" --services "$service" \
  --query 'services[0].loadBalancers[0].targetGroupArn' --output text)
aws elbv2 describe-target-health --target-group-arn "$tg" >/dev/null
aws ecs update-service --cluster "$cluster" --service "$service" --force-new-deployment >/dev/null
aws ecs wait services-stable --cluster "$cluster" --services "$service"
aws elbv2 describe-target-health --target-group-arn "$tg" >/dev/null
