"""Every supported operation's response, walked against botocore's output shape (the model boto3 parses with).

For each call in CALLS (the supported operations of docs/api-coverage.md that read or create something, with valid
input against resources made in setUpClass), the parsed response is walked recursively over
`client.meta.service_model.operation_model(op).output_shape`, and the walk fails on:
  - a member AWS always returns that is missing: the shape's own `required` members (botocore's model) plus the
    per-shape lists in ALWAYS below, established from AWS's documented responses (DescribeInstances' Instance,
    DBInstance, ReplicationGroup, LoadBalancerDescription, AutoScalingGroup, MetricAlarm, ...);
  - a member of the wrong type: string, integer/long, boolean, double/float, timestamp, list, map, structure;
  - a string outside the shape's enum (e.g. "IPV4" where the model says "ipv4").
test_walker_fails_on_a_removed_member proves the walker catches a member removed from a real response.
"""

import datetime
import unittest

import botocore.exceptions

from harness import Region, SAMPLE_AMI, wait_until

# Members AWS returns in every instance of a shape (beyond the model's own `required`), by (service, shape).
ALWAYS = {
    ("ec2", "Reservation"): ["ReservationId", "OwnerId", "Groups", "Instances"],
    ("ec2", "Instance"): [
        "InstanceId", "ImageId", "State", "PrivateDnsName", "PrivateIpAddress", "InstanceType", "LaunchTime",
        "Placement", "Monitoring", "SubnetId", "VpcId", "Architecture", "RootDeviceType", "RootDeviceName",
        "BlockDeviceMappings", "NetworkInterfaces", "SecurityGroups", "Hypervisor", "VirtualizationType",
        "AmiLaunchIndex", "ProductCodes", "EbsOptimized", "EnaSupport", "SourceDestCheck", "CpuOptions",
        "MetadataOptions", "PlatformDetails", "UsageOperation", "UsageOperationUpdateTime",
        "CapacityReservationSpecification", "HibernationOptions", "EnclaveOptions", "MaintenanceOptions",
        "PrivateDnsNameOptions", "ClientToken"],
    ("ec2", "InstanceState"): ["Code", "Name"],
    ("ec2", "Placement"): ["AvailabilityZone", "Tenancy"],
    ("ec2", "InstanceNetworkInterface"): [
        "NetworkInterfaceId", "SubnetId", "VpcId", "OwnerId", "Status", "MacAddress", "PrivateIpAddress",
        "SourceDestCheck", "Groups", "Attachment", "PrivateIpAddresses", "InterfaceType"],
    ("ec2", "Vpc"): ["VpcId", "CidrBlock", "State", "DhcpOptionsId", "InstanceTenancy", "IsDefault", "OwnerId",
                     "CidrBlockAssociationSet"],
    ("ec2", "Subnet"): ["SubnetId", "VpcId", "CidrBlock", "AvailabilityZone", "AvailabilityZoneId", "State",
                        "AvailableIpAddressCount", "DefaultForAz", "MapPublicIpOnLaunch", "OwnerId", "SubnetArn"],
    ("ec2", "SecurityGroup"): ["GroupId", "GroupName", "Description", "VpcId", "OwnerId", "IpPermissions",
                               "IpPermissionsEgress", "SecurityGroupArn"],
    ("ec2", "AvailabilityZone"): ["ZoneName", "ZoneId", "State", "RegionName", "ZoneType", "OptInStatus"],
    ("ec2", "Image"): ["ImageId", "Name", "State", "Architecture", "ImageType", "Public", "OwnerId",
                       "RootDeviceType", "VirtualizationType", "Hypervisor", "CreationDate"],
    ("rds", "DBInstance"): [
        "DBInstanceIdentifier", "DBInstanceClass", "Engine", "DBInstanceStatus", "MasterUsername",
        "AllocatedStorage", "PreferredBackupWindow", "BackupRetentionPeriod", "DBSecurityGroups",
        "VpcSecurityGroups", "DBParameterGroups", "AvailabilityZone", "DBSubnetGroup", "PreferredMaintenanceWindow",
        "PendingModifiedValues", "MultiAZ", "EngineVersion", "AutoMinorVersionUpgrade",
        "ReadReplicaDBInstanceIdentifiers", "LicenseModel", "OptionGroupMemberships", "PubliclyAccessible",
        "StorageType", "DbInstancePort", "StorageEncrypted", "DbiResourceId", "CACertificateIdentifier",
        "DomainMemberships", "CopyTagsToSnapshot", "MonitoringInterval", "DBInstanceArn",
        "IAMDatabaseAuthenticationEnabled", "PerformanceInsightsEnabled", "DeletionProtection", "AssociatedRoles",
        "TagList", "CustomerOwnedIpEnabled", "BackupTarget", "NetworkType", "CertificateDetails"],
    ("rds", "DBSnapshot"): [
        "DBSnapshotIdentifier", "DBInstanceIdentifier", "SnapshotCreateTime", "Engine", "AllocatedStorage",
        "Status", "Port", "AvailabilityZone", "VpcId", "InstanceCreateTime", "MasterUsername", "EngineVersion",
        "LicenseModel", "SnapshotType", "OptionGroupName", "PercentProgress", "StorageType", "Encrypted",
        "DBSnapshotArn", "IAMDatabaseAuthenticationEnabled", "ProcessorFeatures", "DbiResourceId", "TagList",
        "SnapshotTarget"],
    ("rds", "DBSubnetGroup"): ["DBSubnetGroupName", "DBSubnetGroupDescription", "VpcId", "SubnetGroupStatus",
                               "Subnets"],
    ("rds", "Subnet"): ["SubnetIdentifier", "SubnetAvailabilityZone", "SubnetStatus"],
    ("rds", "Endpoint"): ["Address", "Port", "HostedZoneId"],
    ("rds", "DBEngineVersion"): ["Engine", "EngineVersion", "DBParameterGroupFamily", "DBEngineDescription",
                                 "DBEngineVersionDescription", "Status"],
    ("rds", "OrderableDBInstanceOption"): ["Engine", "EngineVersion", "DBInstanceClass", "LicenseModel",
                                           "AvailabilityZones", "MultiAZCapable", "StorageType"],
    ("rds", "Event"): ["SourceIdentifier", "SourceType", "Message", "EventCategories", "Date", "SourceArn"],
    ("elasticache", "ReplicationGroup"): [
        "ReplicationGroupId", "Description", "Status", "PendingModifiedValues", "MemberClusters", "NodeGroups",
        "AutomaticFailover", "MultiAZ", "SnapshotRetentionLimit", "SnapshotWindow", "ClusterEnabled",
        "CacheNodeType", "AuthTokenEnabled", "TransitEncryptionEnabled", "AtRestEncryptionEnabled", "ARN",
        "LogDeliveryConfigurations", "ReplicationGroupCreateTime", "DataTiering", "AutoMinorVersionUpgrade",
        "NetworkType", "IpDiscovery", "ClusterMode", "Engine"],
    ("elasticache", "NodeGroup"): ["NodeGroupId", "Status", "NodeGroupMembers"],
    ("elasticache", "CacheCluster"): [
        "CacheClusterId", "CacheNodeType", "Engine", "EngineVersion", "CacheClusterStatus", "NumCacheNodes",
        "PreferredAvailabilityZone", "CacheClusterCreateTime", "PreferredMaintenanceWindow", "PendingModifiedValues",
        "CacheSecurityGroups", "CacheParameterGroup", "CacheSubnetGroupName", "AutoMinorVersionUpgrade",
        "SecurityGroups", "ReplicationGroupId", "SnapshotRetentionLimit", "SnapshotWindow", "AuthTokenEnabled",
        "TransitEncryptionEnabled", "AtRestEncryptionEnabled", "ARN", "ReplicationGroupLogDeliveryEnabled",
        "LogDeliveryConfigurations", "NetworkType", "IpDiscovery"],
    ("elasticache", "CacheSubnetGroup"): ["CacheSubnetGroupName", "CacheSubnetGroupDescription", "VpcId",
                                          "Subnets", "ARN"],
    ("elasticache", "Subnet"): ["SubnetIdentifier", "SubnetAvailabilityZone"],
    ("elasticache", "Snapshot"): ["SnapshotName", "ReplicationGroupId", "SnapshotStatus", "SnapshotSource",
                                  "CacheNodeType", "Engine", "EngineVersion", "Port", "CacheParameterGroupName",
                                  "CacheSubnetGroupName", "NodeSnapshots", "ARN"],
    ("elb", "LoadBalancerDescription"): [
        "LoadBalancerName", "DNSName", "CanonicalHostedZoneName", "CanonicalHostedZoneNameID",
        "ListenerDescriptions", "Policies", "BackendServerDescriptions", "AvailabilityZones", "Subnets",
        "Instances", "HealthCheck", "SourceSecurityGroup", "SecurityGroups", "CreatedTime", "Scheme"],
    ("elb", "InstanceState"): ["InstanceId", "State", "ReasonCode", "Description"],
    ("autoscaling", "AutoScalingGroup"): [
        "AutoScalingGroupARN", "LoadBalancerNames", "TargetGroupARNs", "HealthCheckGracePeriod", "Instances",
        "SuspendedProcesses", "EnabledMetrics", "Tags", "TerminationPolicies", "NewInstancesProtectedFromScaleIn",
        "ServiceLinkedRoleARN", "TrafficSources", "CapacityRebalance"],
    ("autoscaling", "Instance"): ["InstanceId", "InstanceType", "AvailabilityZone", "LifecycleState",
                                  "HealthStatus", "LaunchConfigurationName", "ProtectedFromScaleIn"],
    ("autoscaling", "LaunchConfiguration"): [
        "LaunchConfigurationName", "LaunchConfigurationARN", "ImageId", "InstanceType", "SecurityGroups",
        "KeyName", "UserData", "BlockDeviceMappings", "InstanceMonitoring", "CreatedTime", "EbsOptimized",
        "KernelId", "RamdiskId", "ClassicLinkVPCSecurityGroups"],
    ("autoscaling", "ScalingPolicy"): ["AutoScalingGroupName", "PolicyName", "PolicyARN", "PolicyType",
                                       "StepAdjustments", "Alarms", "Enabled"],
    ("autoscaling", "Activity"): ["ActivityId", "AutoScalingGroupName", "Cause", "StartTime", "StatusCode",
                                  "Progress", "Description", "Details", "AutoScalingGroupARN"],
    ("cloudwatch", "MetricAlarm"): [
        "AlarmName", "AlarmArn", "AlarmConfigurationUpdatedTimestamp", "ActionsEnabled", "OKActions",
        "AlarmActions", "InsufficientDataActions", "StateValue", "StateReason", "StateUpdatedTimestamp",
        "MetricName", "Namespace", "Statistic", "Dimensions", "Period", "EvaluationPeriods", "Threshold",
        "ComparisonOperator", "StateTransitionedTimestamp"],
    ("cloudwatch", "MetricDataResult"): ["Id", "Label", "Timestamps", "Values", "StatusCode"],
    ("sns", "Topic"): ["TopicArn"],
    ("sns", "Subscription"): ["SubscriptionArn", "Owner", "Protocol", "Endpoint", "TopicArn"],
    ("sts", "GetCallerIdentityResponse"): ["UserId", "Account", "Arn"],
    ("ec2", "Region"): ["RegionName", "Endpoint", "OptInStatus"],
    ("ec2", "InstanceTypeInfo"): [
        "InstanceType", "CurrentGeneration", "FreeTierEligible", "SupportedUsageClasses", "SupportedRootDeviceTypes",
        "SupportedVirtualizationTypes", "BareMetal", "Hypervisor", "ProcessorInfo", "VCpuInfo", "MemoryInfo",
        "InstanceStorageSupported", "EbsInfo", "NetworkInfo", "PlacementGroupInfo", "HibernationSupported",
        "BurstablePerformanceSupported", "DedicatedHostsSupported", "AutoRecoverySupported", "SupportedBootModes"],
    ("ec2", "NetworkInterface"): [
        "NetworkInterfaceId", "SubnetId", "VpcId", "AvailabilityZone", "Description", "OwnerId", "RequesterManaged",
        "Status", "MacAddress", "PrivateIpAddress", "PrivateDnsName", "SourceDestCheck", "InterfaceType", "Groups",
        "Attachment", "PrivateIpAddresses", "Ipv6Addresses", "TagSet"],
    ("rds", "DBParameterGroupStatus"): ["DBParameterGroupName", "ParameterApplyStatus"],
    ("rds", "VpcSecurityGroupMembership"): ["VpcSecurityGroupId", "Status"],
    ("rds", "OptionGroupMembership"): ["OptionGroupName", "Status"],
    ("elasticache", "CacheNode"): ["CacheNodeId", "CacheNodeStatus", "CacheNodeCreateTime", "Endpoint",
                                   "ParameterGroupStatus", "CustomerAvailabilityZone"],
    ("elasticache", "NodeGroupMember"): ["CacheClusterId", "CacheNodeId", "ReadEndpoint",
                                         "PreferredAvailabilityZone", "CurrentRole"],
    ("elasticache", "CacheParameterGroup"): ["CacheParameterGroupName", "CacheParameterGroupFamily", "Description",
                                             "IsGlobal", "ARN"],
    ("elasticache", "CacheEngineVersion"): ["Engine", "EngineVersion", "CacheParameterGroupFamily",
                                            "CacheEngineDescription", "CacheEngineVersionDescription"],
    ("elasticache", "Event"): ["SourceIdentifier", "SourceType", "Message", "Date"],
    ("elb", "HealthCheck"): ["Target", "Interval", "Timeout", "UnhealthyThreshold", "HealthyThreshold"],
    ("elb", "ListenerDescription"): ["Listener", "PolicyNames"],
    ("elb", "LoadBalancerAttributes"): ["CrossZoneLoadBalancing", "AccessLog", "ConnectionDraining",
                                        "ConnectionSettings", "AdditionalAttributes"],
    ("autoscaling", "AutoScalingInstanceDetails"): [
        "InstanceId", "InstanceType", "AutoScalingGroupName", "AvailabilityZone", "LifecycleState", "HealthStatus",
        "LaunchConfigurationName", "ProtectedFromScaleIn"],
    ("autoscaling", "TagDescription"): ["ResourceId", "ResourceType", "Key", "Value", "PropagateAtLaunch"],
    ("cloudwatch", "AlarmHistoryItem"): ["AlarmName", "AlarmType", "Timestamp", "HistoryItemType",
                                         "HistorySummary", "HistoryData"],
    ("cloudwatch", "Metric"): ["Namespace", "MetricName", "Dimensions"],
}

LC = "shape-lc"
ASG = "shape-asg"
LB = "shape-lb"
DB = "shape-db"
RG = "shape-rg"


def walk(service, shape, value, path="", problems=None, visited=None):
    """Returns the list of problems of `value` (parsed by botocore) against `shape`; adds (service, shape name) of
    every structure walked to `visited`."""
    if problems is None:
        problems = []
    if visited is None:
        visited = set()
    t = shape.type_name
    ok_types = {
        "structure": dict, "list": list, "map": dict, "string": str, "boolean": bool,
        "integer": int, "long": int, "double": (int, float), "float": (int, float),
        "timestamp": datetime.datetime, "blob": (bytes, bytearray),
    }
    want = ok_types.get(t)
    if want is not None and (not isinstance(value, want) or (t in ("integer", "long") and isinstance(value, bool))):
        problems.append("%s: %s expected, got %s %r" % (path or "<response>", t, type(value).__name__, value))
        return problems
    if t == "string" and getattr(shape, "enum", None) and value not in shape.enum:
        problems.append("%s: %r is not one of %s's values %s" % (path, value, shape.name, shape.enum))
    if t == "structure":
        visited.add((service, shape.name))
        required = set(shape.metadata.get("required", [])) | set(ALWAYS.get((service, shape.name), []))
        for name in sorted(required):
            if name not in value:
                problems.append("%s: %s (%s) is missing" % (path or "<response>", name, shape.name))
        for name, member_value in value.items():
            if name == "ResponseMetadata" or name not in shape.members:
                continue
            walk(service, shape.members[name], member_value, "%s.%s" % (path, name) if path else name, problems,
                 visited)
    elif t == "list":
        for i, item in enumerate(value):
            walk(service, shape.member, item, "%s[%d]" % (path, i), problems, visited)
    elif t == "map":
        for k, v in value.items():
            walk(service, shape.value, v, "%s[%r]" % (path, k), problems, visited)
    return problems


class ShapesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.region = r = Region.for_class(cls)
        cls.responses = {}  # (service, operation) -> parsed response of the create calls made here

        def keep(service, op, response):
            cls.responses[(service, op)] = response
            return response

        ec2 = r.boto3("ec2")
        subnets = ec2.describe_subnets()["Subnets"]
        cls.subnet_ids = [s["SubnetId"] for s in subnets]
        cls.sg = keep("ec2", "CreateSecurityGroup", ec2.create_security_group(
            GroupName="shape-sg", Description="shapes"))["GroupId"]

        rds, ec = r.boto3("rds"), r.boto3("elasticache")
        keep("rds", "CreateDBSubnetGroup", rds.create_db_subnet_group(
            DBSubnetGroupName="shape-dbsg", DBSubnetGroupDescription="d", SubnetIds=cls.subnet_ids))
        keep("rds", "CreateDBInstance", rds.create_db_instance(
            DBInstanceIdentifier=DB, DBInstanceClass="db.t3.micro", Engine="mysql", AllocatedStorage=20,
            MasterUsername="admin", MasterUserPassword="password1", BackupRetentionPeriod=0,
            DBSubnetGroupName="shape-dbsg", VpcSecurityGroupIds=[cls.sg]))
        keep("elasticache", "CreateCacheSubnetGroup", ec.create_cache_subnet_group(
            CacheSubnetGroupName="shape-csg", CacheSubnetGroupDescription="d", SubnetIds=cls.subnet_ids))
        keep("elasticache", "CreateReplicationGroup", ec.create_replication_group(
            ReplicationGroupId=RG, ReplicationGroupDescription="d", CacheNodeType="cache.t3.micro",
            Engine="redis", NumCacheClusters=2, AutomaticFailoverEnabled=True, CacheSubnetGroupName="shape-csg"))

        elb = r.boto3("elb")
        keep("elb", "CreateLoadBalancer", elb.create_load_balancer(
            LoadBalancerName=LB, AvailabilityZones=["us-west-2a"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP",
                        "InstancePort": 80}]))
        r.create_lc(LC)
        r.create_group(ASG, LC, 1, ["us-west-2a"], LoadBalancerNames=[LB],
                       Tags=[{"Key": "team", "Value": "shapes", "PropagateAtLaunch": True}])
        asc = r.boto3("autoscaling")
        keep("autoscaling", "PutScalingPolicy", asc.put_scaling_policy(
            AutoScalingGroupName=ASG, PolicyName="up", AdjustmentType="ChangeInCapacity", ScalingAdjustment=1))

        sns = r.boto3("sns")
        cls.topic = keep("sns", "CreateTopic", sns.create_topic(Name="shape-topic"))["TopicArn"]
        keep("sns", "Subscribe", sns.subscribe(TopicArn=cls.topic, Protocol="email", Endpoint="ops@example.com"))
        cw = r.boto3("cloudwatch")
        # One metric that exists at once: the region's own metrics appear only after its first collection, which a
        # loaded machine may not have reached when ListMetrics is walked.
        cw.put_metric_data(Namespace="Shapes/Test", MetricData=[
            {"MetricName": "Walked", "Value": 1.0, "Dimensions": [{"Name": "Suite", "Value": "shapes"}]}])
        cw.put_metric_alarm(AlarmName="shape-alarm", MetricName="CPUUtilization", Namespace="AWS/EC2",
                            Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=80,
                            ComparisonOperator="GreaterThanThreshold",
                            Dimensions=[{"Name": "AutoScalingGroupName", "Value": ASG}], AlarmActions=[cls.topic])

        r.wait_group(ASG, 1)
        wait_until(lambda: ec.describe_replication_groups(ReplicationGroupId=RG)["ReplicationGroups"][0]["Status"]
                   == "available", 90, 0.3, "the replication group")
        keep("elasticache", "CreateSnapshot", ec.create_snapshot(ReplicationGroupId=RG, SnapshotName="shape-snap"))
        wait_until(lambda: rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]["DBInstanceStatus"]
                   == "available", 120, 0.5, "the DB instance")
        keep("rds", "CreateDBSnapshot", rds.create_db_snapshot(DBInstanceIdentifier=DB,
                                                               DBSnapshotIdentifier="shape-dbsnap"))
        wait_until(lambda: ec.describe_snapshots(SnapshotName="shape-snap")["Snapshots"][0]["SnapshotStatus"]
                   == "available", 60, 0.3, "the cache snapshot")
        wait_until(lambda: rds.describe_db_snapshots(DBSnapshotIdentifier="shape-dbsnap")["DBSnapshots"][0]["Status"]
                   == "available", 90, 0.5, "the DB snapshot")

    def calls(self):
        """(service, operation, kwargs) of every supported read operation, with valid input."""
        r = self.region
        instance_id = r.boto3("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
        db_arn = r.boto3("rds").describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]["DBInstanceArn"]
        rg_arn = r.boto3("elasticache").describe_replication_groups(
            ReplicationGroupId=RG)["ReplicationGroups"][0]["ARN"]
        return [
            ("sts", "get_caller_identity", {}),
            ("ec2", "describe_instances", {}),
            ("ec2", "describe_instances", {"InstanceIds": [instance_id]}),
            ("ec2", "describe_images", {}),
            ("ec2", "describe_availability_zones", {}),
            ("ec2", "describe_regions", {}),
            ("ec2", "describe_vpcs", {}),
            ("ec2", "describe_vpc_attribute", {"VpcId": r.boto3("ec2").describe_vpcs()["Vpcs"][0]["VpcId"],
                                               "Attribute": "enableDnsSupport"}),
            ("ec2", "describe_subnets", {}),
            ("ec2", "describe_security_groups", {}),
            ("ec2", "describe_account_attributes", {}),
            ("ec2", "describe_network_interfaces", {}),
            ("ec2", "describe_instance_types", {"InstanceTypes": ["t3.micro"]}),
            ("autoscaling", "describe_auto_scaling_groups", {}),
            ("autoscaling", "describe_auto_scaling_instances", {}),
            ("autoscaling", "describe_launch_configurations", {}),
            ("autoscaling", "describe_scaling_activities", {"AutoScalingGroupName": ASG}),
            ("autoscaling", "describe_scaling_process_types", {}),
            ("autoscaling", "describe_tags", {}),
            ("autoscaling", "describe_load_balancers", {"AutoScalingGroupName": ASG}),
            ("autoscaling", "describe_policies", {"AutoScalingGroupName": ASG}),
            ("elb", "describe_load_balancers", {}),
            ("elb", "describe_instance_health", {"LoadBalancerName": LB}),
            ("elb", "describe_load_balancer_attributes", {"LoadBalancerName": LB}),
            ("elb", "describe_tags", {"LoadBalancerNames": [LB]}),
            ("rds", "describe_db_instances", {}),
            ("rds", "describe_db_subnet_groups", {}),
            ("rds", "describe_events", {"Duration": 60}),
            ("rds", "describe_db_snapshots", {}),
            ("rds", "describe_db_instance_automated_backups", {}),
            ("rds", "describe_db_engine_versions", {"Engine": "mysql"}),
            ("rds", "describe_orderable_db_instance_options", {"Engine": "mysql", "MaxRecords": 20}),
            ("rds", "list_tags_for_resource", {"ResourceName": db_arn}),
            ("elasticache", "describe_replication_groups", {}),
            ("elasticache", "describe_cache_clusters", {"ShowCacheNodeInfo": True}),
            ("elasticache", "describe_cache_subnet_groups", {}),
            ("elasticache", "describe_events", {}),
            ("elasticache", "describe_cache_parameter_groups", {}),
            ("elasticache", "describe_cache_parameters", {"CacheParameterGroupName": "default.redis7"}),
            ("elasticache", "describe_cache_engine_versions", {}),
            ("elasticache", "describe_snapshots", {"ShowNodeGroupConfig": True}),
            ("elasticache", "list_tags_for_resource", {"ResourceName": rg_arn}),
            ("sns", "list_topics", {}),
            ("sns", "get_topic_attributes", {"TopicArn": self.topic}),
            ("sns", "list_subscriptions", {}),
            ("sns", "list_subscriptions_by_topic", {"TopicArn": self.topic}),
            ("sns", "list_tags_for_resource", {"ResourceArn": self.topic}),
            ("sns", "publish", {"TopicArn": self.topic, "Message": "hello"}),
            ("cloudwatch", "describe_alarms", {}),
            ("cloudwatch", "describe_alarm_history", {}),
            ("cloudwatch", "list_metrics", {}),
            ("cloudwatch", "describe_alarms_for_metric", {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"}),
            ("cloudwatch", "list_tags_for_resource", {"ResourceARN": self.region.boto3("cloudwatch").describe_alarms(
                AlarmNames=["shape-alarm"])["MetricAlarms"][0]["AlarmArn"]}),
            ("cloudwatch", "get_metric_data", {
                "MetricDataQueries": [{"Id": "cpu", "MetricStat": {
                    "Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
                               "Dimensions": [{"Name": "AutoScalingGroupName", "Value": ASG}]},
                    "Period": 60, "Stat": "Average"}}],
                "StartTime": datetime.datetime.utcnow() - datetime.timedelta(minutes=10),
                "EndTime": datetime.datetime.utcnow()}),
            ("cloudwatch", "get_metric_statistics", {
                "Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Period": 60, "Statistics": ["Average"],
                "StartTime": datetime.datetime.utcnow() - datetime.timedelta(minutes=10),
                "EndTime": datetime.datetime.utcnow()}),
        ]

    def op_name(self, client, method):
        return client.meta.method_to_api_mapping[method]

    def test_every_supported_operation_answers_in_its_output_shape(self):
        problems = []
        visited = set()
        for service, method, kwargs in self.calls():
            client = self.region.boto3(service)
            op = self.op_name(client, method)
            try:
                response = getattr(client, method)(**kwargs)
            except botocore.exceptions.ClientError as e:
                problems.append("%s.%s: refused: %s" % (service, op, e))
                continue
            shape = client.meta.service_model.operation_model(op).output_shape
            if shape is not None:
                problems += ["%s.%s: %s" % (service, op, p) for p in walk(service, shape, response, visited=visited)]
        for (service, op), response in self.responses.items():
            shape = self.region.boto3(service).meta.service_model.operation_model(op).output_shape
            problems += ["%s.%s: %s" % (service, op, p) for p in walk(service, shape, response, visited=visited)]
        # Not vacuous: every shape with a list above was met in some response (no list came back empty).
        self.assertEqual(sorted(set(ALWAYS) - visited), [], "shapes no response contained")
        self.assertEqual(problems, [], "responses that are not what AWS answers:\n  " + "\n  ".join(problems))

    def test_walker_fails_on_a_removed_member(self):
        """The walk is not vacuous: a member AWS always returns, removed from a real response, is reported, and
        a member of the wrong type is reported."""
        rds = self.region.boto3("rds")
        shape = rds.meta.service_model.operation_model("DescribeDBInstances").output_shape
        response = rds.describe_db_instances(DBInstanceIdentifier=DB)
        self.assertEqual(walk("rds", shape, response), [])
        del response["DBInstances"][0]["DBSubnetGroup"]["VpcId"]
        response["DBInstances"][0]["MultiAZ"] = "false"
        got = walk("rds", shape, response)
        self.assertEqual(len(got), 2, got)
        self.assertIn("DBInstances[0].DBSubnetGroup: VpcId (DBSubnetGroup) is missing", got)
        self.assertIn("DBInstances[0].MultiAZ: boolean expected, got str 'false'", got)
        asc = self.region.boto3("autoscaling")
        shape = asc.meta.service_model.operation_model("DescribeAutoScalingGroups").output_shape
        response = asc.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])
        del response["AutoScalingGroups"][0]["TrafficSources"]
        self.assertEqual(walk("autoscaling", shape, response),
                         ["AutoScalingGroups[0]: TrafficSources (AutoScalingGroup) is missing"])


if __name__ == "__main__":
    unittest.main()
