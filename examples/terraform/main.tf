# The seed's stack (../../../shared/seed, §1–§5) as Terraform, against one autopipe region.
# See README.md in this folder for the provider set-up and the CLI configuration.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  description = "The region's API endpoint (the `endpoint` file in its data dir)."
  type        = string
}

variable "credentials_file" {
  description = "The region's credentials file (`credentials` in its data dir)."
  type        = string
}

variable "db_password" {
  description = "The DB instance's master password (the seed uses `password`)."
  type        = string
  sensitive   = true
  default     = "password"
}

provider "aws" {
  region                   = "us-west-2"
  shared_credentials_files = [var.credentials_file]
  # There is no instance metadata service to ask for credentials; everything else is checked as on AWS.
  skip_metadata_api_check = true

  endpoints {
    autoscaling = var.endpoint
    cloudwatch  = var.endpoint
    ec2         = var.endpoint
    elb         = var.endpoint
    elasticache = var.endpoint
    rds         = var.endpoint
    sns         = var.endpoint
    sts         = var.endpoint
  }
}

# What most configurations read first: the default VPC, its subnets and its default security group.
data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

data "aws_security_group" "default" {
  vpc_id = data.aws_vpc.default.id
  name   = "default"
}

# §1.1: the launch configuration and the group (min 2, max 10, desired 5, two zones).
resource "aws_launch_configuration" "app" {
  name          = "auto-pipeline-launch-config"
  image_id      = "ami-0a1b2c3d4e5f60718" # the built-in sample web service
  instance_type = "t3.micro"
}

resource "aws_autoscaling_group" "app" {
  name                 = "auto-pipeline-asg"
  min_size             = 2
  max_size             = 10
  desired_capacity     = 5
  launch_configuration = aws_launch_configuration.app.name
  availability_zones   = ["us-west-2a", "us-west-2b"]
  load_balancers       = [aws_elb.app.name]
}

# §1.2: the Classic Load Balancer, HTTP 80 → 80.
resource "aws_elb" "app" {
  name               = "auto-pipeline-lb"
  availability_zones = ["us-west-2a", "us-west-2b"]

  listener {
    lb_port           = 80
    lb_protocol       = "http"
    instance_port     = 80
    instance_protocol = "http"
  }
}

# The subnet groups the cache and the DB are placed in: every default subnet (one per zone).
resource "aws_elasticache_subnet_group" "cache" {
  name        = "auto-pipeline-cache-subnets"
  description = "Auto Pipeline Redis subnets"
  subnet_ids  = data.aws_subnets.default.ids
}

resource "aws_db_subnet_group" "db" {
  name        = "auto-pipeline-db-subnets"
  description = "Auto Pipeline DB subnets"
  subnet_ids  = data.aws_subnets.default.ids
}

# §2: Redis in cluster mode, 2 shards × (1 primary + 2 replicas).
resource "aws_elasticache_replication_group" "cache" {
  replication_group_id       = "auto-pipeline-redis"
  description                = "Auto Pipeline Redis Cluster"
  engine                     = "redis"
  node_type                  = "cache.m5.large"
  parameter_group_name       = "default.redis5.0.cluster.on"
  subnet_group_name          = aws_elasticache_subnet_group.cache.name
  num_node_groups            = 2
  replicas_per_node_group    = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true # every shard has a replica outside its primary's zone
  port                       = 6379
}

# §3 and §4: MySQL with Multi-AZ, automated backups kept 7 days.
resource "aws_db_instance" "db" {
  identifier              = "auto-pipeline-db"
  instance_class          = "db.t3.medium"
  engine                  = "mysql"
  allocated_storage       = 20
  multi_az                = true
  username                = "admin"
  password                = var.db_password
  vpc_security_group_ids  = [data.aws_security_group.default.id]
  db_subnet_group_name    = aws_db_subnet_group.db.name
  backup_retention_period = 7
  skip_final_snapshot     = true
}

# §5: the topic and the CPU alarm that notifies it.
resource "aws_sns_topic" "alerts" {
  name = "AutoPipelineAlerts"
}

resource "aws_cloudwatch_metric_alarm" "high_cpu" {
  alarm_name          = "HighCPUUsage"
  metric_name         = "CPUUtilization"
  namespace           = "AWS/EC2"
  statistic           = "Average"
  period              = 300
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 2
  dimensions = {
    AutoScalingGroupName = aws_autoscaling_group.app.name
  }
  alarm_actions = [aws_sns_topic.alerts.arn]
}

output "load_balancer_dns_name" {
  value = aws_elb.app.dns_name
}

output "db_endpoint" {
  value = aws_db_instance.db.endpoint
}

output "redis_configuration_endpoint" {
  value = aws_elasticache_replication_group.cache.configuration_endpoint_address
}

output "subnets" {
  value = data.aws_subnets.default.ids
}
