// The RDS API handlers through ApiRouter::Invoke, over an in-memory store and fake time. No controller runs: the
// tests look at what the API validates, writes (the db_instance, db_instance_secret and rds_event documents of
// rds/db_instances.h) and renders, and stand in for the controller by writing DBInstanceStatus where a rule needs
// an available (or stopped) instance.
#include "rds/rds_service.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/api_server.h"
#include "common/time_util.h"
#include "ec2/vpc.h"
#include "rds/db_backups.h"
#include "rds/db_instances.h"
#include "rds/db_subnet_groups.h"
#include "region/region_fixture.h"
#include "store/store.h"

namespace autopipe {
namespace {

constexpr char kId[] = "auto-pipeline-db";
constexpr char kPassword[] = "s3cret-Passw0rd";

class RdsServiceTest : public RegionFixture {
 protected:
  void SetUp() override { WireRegion({.auto_scaling = false, .load_balancing = false, .service = "rds"}); }

  // The seed's create-db-instance (with a password of its own); `overrides` replace or add parameters, an empty
  // value removes one.
  static FormParams CreateParams(const std::string& id = kId, const FormParams& overrides = {}) {
    FormParams p = {{"DBInstanceIdentifier", id},
                    {"DBInstanceClass", "db.t3.medium"},
                    {"Engine", "mysql"},
                    {"AllocatedStorage", "20"},
                    {"MultiAZ", "true"},
                    {"MasterUsername", "admin"},
                    {"MasterUserPassword", kPassword},
                    {"VpcSecurityGroupIds.VpcSecurityGroupId.1", "sg-12345678"}};
    for (const auto& [k, v] : overrides) {
      if (v.empty()) p.erase(k);
      else p[k] = v;
    }
    return p;
  }

  Json Create(const std::string& id = kId, const FormParams& overrides = {}) {
    return MustCall("CreateDBInstance", CreateParams(id, overrides))["DBInstance"];
  }

  Json Stored(const std::string& id = kId) {
    auto doc = store_->Get(kind::kDbInstance, id);
    return doc ? *doc : Json();
  }

  Json Secret(const std::string& id = kId) {
    auto doc = store_->Get(kind::kDbInstanceSecret, id);
    return doc ? *doc : Json();
  }

  Json Describe(const std::string& id = kId) {
    return MustCall("DescribeDBInstances", {{"DBInstanceIdentifier", id}})["DBInstances"][0];
  }

  // Stands in for the controller: the instance's status (and its actual MultiAZ / class, as it would record).
  void SetStatus(const std::string& status, const std::string& id = kId) {
    Json db = Stored(id);
    db["DBInstanceStatus"] = status;
    db["MultiAZ"] = db["Spec"]["MultiAZ"];
    db["DBInstanceClass"] = db["Spec"]["DBInstanceClass"];
    ASSERT_TRUE(store_->Put(kind::kDbInstance, id, db).ok());
  }

  Json Events(const FormParams& params = {}) { return MustCall("DescribeEvents", params)["Events"]; }

  // A call that must fail with `code` (any message) and leave the store exactly as it was.
  void ExpectRefused(const std::string& action, const FormParams& params, const std::string& code,
                     int http_status = 400) {
    const uint64_t revision = store_->Revision();
    auto r = Call(action, params);
    ASSERT_FALSE(r.ok()) << action << " succeeded: " << r->dump();
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_EQ(r.status().http_status(), http_status) << r.status().ToString();
    EXPECT_EQ(r.status().message().find(kPassword), std::string::npos);
    EXPECT_EQ(store_->Revision(), revision) << action << " changed the store";
  }

  void ExpectCreateRefused(const FormParams& overrides, const std::string& code) {
    SCOPED_TRACE(Json(overrides).dump());
    ExpectRefused("CreateDBInstance", CreateParams(kId, overrides), code);
    EXPECT_EQ(store_->Count(kind::kDbInstance), 0u);
  }

  // The result as the Query protocol renders it.
  std::string Xml(const std::string& action, const Json& result) {
    ApiRequest req;
    req.service = "rds";
    req.action = action;
    req.request_id = "req-1";
    return RenderResult(RdsApi(&ctx_).info, req, result).body;
  }
};

// ---- CreateDBInstance -----------------------------------------------------------------------------------------

TEST_F(RdsServiceTest, SeedCreateWritesTheDocumentTheControllerActsOn) {
  clock_.Set(1764590400000);
  Json r = Create();
  EXPECT_EQ(r["DBInstanceIdentifier"], kId);
  EXPECT_EQ(r["DBInstanceStatus"], "creating");
  EXPECT_EQ(r["Engine"], "mysql");
  EXPECT_EQ(r["EngineVersion"], "8.0.39");
  EXPECT_EQ(r["DBInstanceClass"], "db.t3.medium");
  EXPECT_EQ(r["MultiAZ"], true);
  EXPECT_EQ(r["AllocatedStorage"], 20);
  EXPECT_EQ(r["MasterUsername"], "admin");
  EXPECT_EQ(r["BackupRetentionPeriod"], 1);
  EXPECT_EQ(r["AvailabilityZone"], "us-west-2a");
  EXPECT_FALSE(r.contains("SecondaryAvailabilityZone"));  // the controller picks it
  EXPECT_FALSE(r.contains("Endpoint"));                   // shown once created, as in RDS
  EXPECT_FALSE(r.contains("LatestRestorableTime"));       // no backup yet
  EXPECT_EQ(r["VpcSecurityGroups"], Json::parse(R"([{"VpcSecurityGroupId":"sg-12345678","Status":"active"}])"));
  EXPECT_EQ(r["DBParameterGroups"][0]["DBParameterGroupName"], "default.mysql8.0");
  EXPECT_EQ(r["OptionGroupMemberships"][0]["OptionGroupName"], "default:mysql-8-0");
  EXPECT_EQ(r["PendingModifiedValues"], Json::object());
  EXPECT_EQ(r["StorageEncrypted"], false);
  EXPECT_EQ(r["PubliclyAccessible"], false);
  EXPECT_EQ(r["ReadReplicaDBInstanceIdentifiers"], Json::array());
  EXPECT_EQ(r["DBInstanceArn"], "arn:aws:rds:us-west-2:123456789012:db:auto-pipeline-db");
  EXPECT_EQ(r["InstanceCreateTime"], IsoTimeMillis(1764590400000));
  const std::string dbi = r["DbiResourceId"];
  ASSERT_EQ(dbi.size(), 29u);
  EXPECT_EQ(dbi.substr(0, 3), "db-");
  for (char c : dbi.substr(3)) EXPECT_TRUE(std::isdigit(c) || std::isupper(c)) << dbi;
  EXPECT_EQ(r.dump().find(kPassword), std::string::npos);

  Json db = Stored();
  EXPECT_EQ(db["Spec"], Json::parse(R"({"MultiAZ":true,"DBInstanceClass":"db.t3.medium","Running":true,
                                        "Deleting":false,"RebootSeq":0,"RebootForceFailover":false})"));
  EXPECT_EQ(db["Endpoint"], Json::parse(R"({"Address":"127.200.210.1","Port":3306})"));
  EXPECT_EQ(db["EndpointIndex"], 1);
  EXPECT_EQ(db["Port"], 3306);
  EXPECT_EQ(db["StorageType"], "gp2");
  EXPECT_EQ(db["VpcSecurityGroupIds"], Json::array({"sg-12345678"}));
  EXPECT_EQ(db.dump().find(kPassword), std::string::npos);
  EXPECT_EQ(Secret(), Json::parse(std::string(R"({"MasterUserPassword":")") + kPassword + R"(","PasswordSeq":1})"));
  // Event 0005 is the controller's, once the instance really is available.
  EXPECT_EQ(store_->Count(kind::kRdsEvent), 0u);
}

TEST_F(RdsServiceTest, CreateShowsTheEndpointOnceAvailable) {
  Create(kId, {{"Port", "3307"}});
  SetStatus("available");
  Json r = Describe();
  EXPECT_EQ(r["Endpoint"]["Address"], "127.200.210.1");
  EXPECT_EQ(r["Endpoint"]["Port"], 3307);
  EXPECT_TRUE(r["Endpoint"].contains("HostedZoneId"));
}

TEST_F(RdsServiceTest, CreateDefaultsAndOptions) {
  Json r = Create("Upper-Case-DB", {{"MultiAZ", ""},
                                    {"AvailabilityZone", "us-west-2c"},
                                    {"Engine", "mariadb"},
                                    {"DBName", "app"},
                                    {"BackupRetentionPeriod", "0"},
                                    {"PreferredBackupWindow", "23:45-00:15"},
                                    {"PreferredMaintenanceWindow", "Sun:01:00-Sun:01:30"},
                                    {"StorageType", "gp3"},
                                    {"Tags.Tag.1.Key", "env"},
                                    {"Tags.Tag.1.Value", "prod"}});
  EXPECT_EQ(r["DBInstanceIdentifier"], "upper-case-db");  // stored lower-case
  EXPECT_EQ(r["MultiAZ"], false);
  EXPECT_EQ(r["AvailabilityZone"], "us-west-2c");
  EXPECT_EQ(r["EngineVersion"], "10.11.9");
  EXPECT_EQ(r["DBParameterGroups"][0]["DBParameterGroupName"], "default.mariadb10.11");
  EXPECT_EQ(r["DBName"], "app");
  EXPECT_EQ(r["BackupRetentionPeriod"], 0);
  EXPECT_EQ(r["PreferredBackupWindow"], "23:45-00:15");
  EXPECT_EQ(r["PreferredMaintenanceWindow"], "sun:01:00-sun:01:30");
  EXPECT_EQ(r["StorageType"], "gp3");
  EXPECT_EQ(r["TagList"], Json::parse(R"([{"Key":"env","Value":"prod"}])"));
  EXPECT_TRUE(store_->Get(kind::kDbInstance, "upper-case-db"));

  // Default windows: a 30-minute backup slot and a maintenance slot that do not overlap.
  Json d = Create("other");
  const std::string bw = d["PreferredBackupWindow"];
  ASSERT_EQ(bw.size(), 11u);
  EXPECT_EQ(bw[5], '-');
  const std::string mw = d["PreferredMaintenanceWindow"];
  EXPECT_EQ(mw.size(), 19u);
}

TEST_F(RdsServiceTest, CreateResolvesEngineVersions) {
  EXPECT_EQ(Create("a", {{"EngineVersion", "5.7"}})["EngineVersion"], "5.7.44");
  EXPECT_EQ(Create("b", {{"EngineVersion", "8.0.35"}})["EngineVersion"], "8.0.35");
  EXPECT_EQ(Create("c", {{"EngineVersion", "8.0"}})["DBParameterGroups"][0]["DBParameterGroupName"],
            "default.mysql8.0");
  Json m = Create("d", {{"Engine", "mariadb"}, {"EngineVersion", "10.6.14"}});
  EXPECT_EQ(m["EngineVersion"], "10.6.14");
  EXPECT_EQ(m["OptionGroupMemberships"][0]["OptionGroupName"], "default:mariadb-10-6");
}

TEST_F(RdsServiceTest, CreateRefusesBadIdentifiers) {
  for (const char* id : {"1abc", "a--b", "ab-", "a_b", "-ab", "a.b"}) {
    ExpectCreateRefused({{"DBInstanceIdentifier", id}}, "InvalidParameterValue");
  }
  ExpectCreateRefused({{"DBInstanceIdentifier", "a" + std::string(63, 'b')}}, "InvalidParameterValue");
  Create("a" + std::string(62, 'b'));  // 63 is the limit
}

TEST_F(RdsServiceTest, CreateRefusesBadMasterUsernames) {
  for (const char* user : {"1admin", "ad-min", "admin!", "rdsadmin", "ROOT", "abcdefghijklmnopq"}) {
    ExpectCreateRefused({{"MasterUsername", user}}, "InvalidParameterValue");
  }
  ExpectCreateRefused({{"MasterUsername", ""}}, "InvalidParameterValue");  // left out
  Create(kId, {{"MasterUsername", "abcdefghijklmnop"}});                   // 16 is the limit
}

TEST_F(RdsServiceTest, CreateRefusesBadPasswords) {
  for (const std::string& pw : {std::string("short77"), std::string(42, 'x'), std::string("has/slash1"),
                                std::string("has\"quote1"), std::string("has@at1234"), std::string("has space1"),
                                std::string("tab\there12")}) {
    SCOPED_TRACE(pw);
    const uint64_t revision = store_->Revision();
    auto r = Call("CreateDBInstance", CreateParams(kId, {{"MasterUserPassword", pw}}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), "InvalidParameterValue");
    EXPECT_EQ(r.status().message().find(pw), std::string::npos) << "the message repeats the password";
    EXPECT_EQ(store_->Revision(), revision);
  }
  ExpectCreateRefused({{"MasterUserPassword", ""}}, "InvalidParameterValue");
  auto r = Call("CreateDBInstance", CreateParams(kId, {{"MasterUserPassword", "short77"}}));
  EXPECT_EQ(r.status().message(),
            "The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters.");
  Create("eight", {{"MasterUserPassword", "12345678"}});
  Create("forty-one", {{"MasterUserPassword", std::string(41, '~')}});
}

TEST_F(RdsServiceTest, CreateRefusesPortStorageAndRetentionOutOfRange) {
  ExpectCreateRefused({{"Port", "1149"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"Port", "65536"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"Port", "x"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"AllocatedStorage", "19"}}, "InvalidParameterCombination");
  ExpectCreateRefused({{"AllocatedStorage", "65537"}}, "InvalidParameterCombination");
  ExpectCreateRefused({{"AllocatedStorage", ""}}, "InvalidParameterValue");
  ExpectCreateRefused({{"StorageType", "io1"}}, "StorageTypeNotSupported");
  ExpectCreateRefused({{"BackupRetentionPeriod", "36"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"BackupRetentionPeriod", "-1"}}, "InvalidParameterValue");
  auto r = Call("CreateDBInstance", CreateParams(kId, {{"AllocatedStorage", "19"}}));
  EXPECT_EQ(r.status().message(), "Invalid storage size for engine name mysql and storage type gp2: 19");
  Create("low", {{"Port", "1150"}, {"AllocatedStorage", "20"}, {"BackupRetentionPeriod", "35"}});
  Create("high", {{"Port", "65535"}, {"AllocatedStorage", "65536"}});
}

TEST_F(RdsServiceTest, CreateRefusesBadCombinations) {
  ExpectCreateRefused({{"AvailabilityZone", "us-west-2b"}}, "InvalidParameterCombination");  // with MultiAZ
  auto r = Call("CreateDBInstance", CreateParams(kId, {{"AvailabilityZone", "us-west-2b"}}));
  EXPECT_EQ(r.status().message(), "Requesting a specific availability zone is not valid for Multi-AZ instances.");
  ExpectCreateRefused({{"MultiAZ", "false"}, {"AvailabilityZone", "us-east-1a"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"DBInstanceClass", "db.x9.huge"}}, "InvalidParameterCombination");
  ExpectCreateRefused({{"DBInstanceClass", ""}}, "InvalidParameterValue");
  ExpectCreateRefused({{"Engine", "postgres"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"EngineVersion", "9.9"}}, "InvalidParameterCombination");
  ExpectCreateRefused({{"EngineVersion", "8.0.x"}}, "InvalidParameterCombination");
  ExpectCreateRefused({{"Engine", "mariadb"}, {"EngineVersion", "8.0.39"}}, "InvalidParameterCombination");
  ExpectCreateRefused({{"PreferredBackupWindow", "25:00-25:30"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"PreferredBackupWindow", "10:00-10:20"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"PreferredMaintenanceWindow", "xyz:10:00-xyz:11:00"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"PreferredMaintenanceWindow", "mon:10:00-mon:10:10"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"PreferredBackupWindow", "10:00-11:00"}, {"PreferredMaintenanceWindow", "tue:10:30-tue:11:30"}},
                      "InvalidParameterValue");
  ExpectCreateRefused({{"VpcSecurityGroupIds.VpcSecurityGroupId.1", "default"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"DBName", "1app"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"Tags.Tag.1.Key", "aws:x"}, {"Tags.Tag.1.Value", "y"}}, "InvalidParameterValue");
  ExpectCreateRefused({{"StorageEncrypted", "true"}}, "InvalidParameterCombination");
}

TEST_F(RdsServiceTest, CreateRefusesDuplicatesAndTheQuota) {
  Create();
  ExpectRefused("CreateDBInstance", CreateParams(kId), "DBInstanceAlreadyExists");
  ExpectRefused("CreateDBInstance", CreateParams("AUTO-PIPELINE-DB"), "DBInstanceAlreadyExists");
  for (int i = 1; i < 40; ++i) Create("db" + std::to_string(i));
  ExpectRefused("CreateDBInstance", CreateParams("one-too-many"), "InstanceQuotaExceeded");
  EXPECT_EQ(store_->Count(kind::kDbInstance), 40u);
}

TEST_F(RdsServiceTest, EndpointAddressesSkipTheOnesInUse) {
  Create("a");
  Create("b");
  EXPECT_EQ(Stored("a")["Endpoint"]["Address"], "127.200.210.1");
  EXPECT_EQ(Stored("b")["Endpoint"]["Address"], "127.200.210.2");
  // The controller removes a deleted instance's document: its address is free again, but handed out round-robin.
  ASSERT_TRUE(store_->Delete(kind::kDbInstance, "a").ok());
  Create("c");
  EXPECT_EQ(Stored("c")["EndpointIndex"], 3);
  // A counter pointing at an address still held skips it.
  ASSERT_TRUE(store_->Put(kind::kMeta, "rds-endpoint-counter", Json{{"Next", 2}}).ok());
  Create("d");
  EXPECT_EQ(Stored("d")["EndpointIndex"], 4);
}

// ---- DescribeDBInstances --------------------------------------------------------------------------------------

TEST_F(RdsServiceTest, DescribeFindsFiltersAndRefuses) {
  Create("alpha");
  Create("beta", {{"Engine", "mariadb"}});
  EXPECT_EQ(MustCall("DescribeDBInstances", {})["DBInstances"].size(), 2u);
  EXPECT_EQ(Describe("ALPHA")["DBInstanceIdentifier"], "alpha");
  EXPECT_EQ(Describe(Stored("beta")["DBInstanceArn"])["DBInstanceIdentifier"], "beta");
  ExpectRefused("DescribeDBInstances", {{"DBInstanceIdentifier", "gamma"}}, "DBInstanceNotFound", 404);
  auto r = Call("DescribeDBInstances", {{"DBInstanceIdentifier", "gamma"}});
  EXPECT_EQ(r.status().message(), "DBInstance gamma not found.");

  auto filtered = [&](const std::string& name, const std::string& value) {
    Json r = MustCall("DescribeDBInstances", {{"Filters.Filter.1.Name", name}, {"Filters.Filter.1.Values.Value.1", value}});
    std::vector<std::string> ids;
    for (const auto& d : r["DBInstances"]) ids.push_back(d["DBInstanceIdentifier"]);
    return ids;
  };
  EXPECT_EQ(filtered("engine", "mariadb"), std::vector<std::string>{"beta"});
  EXPECT_EQ(filtered("db-instance-id", "alpha"), std::vector<std::string>{"alpha"});
  EXPECT_EQ(filtered("db-instance-id", Stored("beta")["DBInstanceArn"]), std::vector<std::string>{"beta"});
  EXPECT_EQ(filtered("dbi-resource-id", Stored("alpha")["DbiResourceId"]), std::vector<std::string>{"alpha"});
  EXPECT_TRUE(filtered("engine", "postgres").empty());
  ExpectRefused("DescribeDBInstances", {{"Filters.Filter.1.Name", "color"}, {"Filters.Filter.1.Values.Value.1", "x"}},
                "InvalidParameterValue");
  ExpectRefused("DescribeDBInstances", {{"Filters.Filter.1.Name", "engine"}}, "InvalidParameterValue");
}

TEST_F(RdsServiceTest, DescribePagesWithMarkers) {
  for (int i = 0; i < 25; ++i) Create("db" + std::to_string(100 + i));
  Json first = MustCall("DescribeDBInstances", {{"MaxRecords", "20"}});
  ASSERT_EQ(first["DBInstances"].size(), 20u);
  ASSERT_TRUE(first.contains("Marker"));
  Json second = MustCall("DescribeDBInstances", {{"MaxRecords", "20"}, {"Marker", first["Marker"]}});
  ASSERT_EQ(second["DBInstances"].size(), 5u);
  EXPECT_FALSE(second.contains("Marker"));
  EXPECT_EQ(second["DBInstances"][4]["DBInstanceIdentifier"], "db124");
  EXPECT_FALSE(MustCall("DescribeDBInstances", {})["DBInstances"].empty());
  ExpectRefused("DescribeDBInstances", {{"MaxRecords", "19"}}, "InvalidParameterValue");
  ExpectRefused("DescribeDBInstances", {{"MaxRecords", "101"}}, "InvalidParameterValue");
  ExpectRefused("DescribeDBInstances", {{"Marker", "garbage"}}, "InvalidParameterValue");
}

TEST_F(RdsServiceTest, RendersRdsElementNames) {
  Create();
  SetStatus("available");
  const std::string xml = Xml("DescribeDBInstances", MustCall("DescribeDBInstances", {}));
  for (const char* element :
       {"<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">",
        "<DescribeDBInstancesResult><DBInstances><DBInstance><DBInstanceIdentifier>auto-pipeline-db<",
        "<VpcSecurityGroups><VpcSecurityGroupMembership><VpcSecurityGroupId>sg-12345678</VpcSecurityGroupId>"
        "<Status>active</Status></VpcSecurityGroupMembership></VpcSecurityGroups>",
        "<DBParameterGroups><DBParameterGroup><DBParameterGroupName>default.mysql8.0<",
        "<OptionGroupMemberships><OptionGroupMembership>", "<ReadReplicaDBInstanceIdentifiers></",
        "<Endpoint><Address>127.200.210.1</Address><Port>3306</Port>", "<MultiAZ>true</MultiAZ>",
        "<PendingModifiedValues></PendingModifiedValues>", "<TagList></TagList>"}) {
    EXPECT_NE(xml.find(element), std::string::npos) << element << "\n" << xml;
  }
  EXPECT_EQ(xml.find(kPassword), std::string::npos);
}

// ---- ModifyDBInstance -----------------------------------------------------------------------------------------

TEST_F(RdsServiceTest, ModifyNeedsAnAvailableInstance) {
  Create();
  ExpectRefused("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"BackupRetentionPeriod", "7"}},
                "InvalidDBInstanceState");
  ExpectRefused("ModifyDBInstance", {{"DBInstanceIdentifier", "nope"}, {"BackupRetentionPeriod", "7"}},
                "DBInstanceNotFound", 404);
}

TEST_F(RdsServiceTest, SeedModifySetsBackupRetentionAtOnce) {
  Create();
  SetStatus("available");
  Json r = MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"BackupRetentionPeriod", "7"}})["DBInstance"];
  EXPECT_EQ(r["BackupRetentionPeriod"], 7);  // non-zero to non-zero: no outage, applied now
  EXPECT_EQ(r["PendingModifiedValues"], Json::object());
  EXPECT_EQ(r["DBInstanceStatus"], "available");  // nothing for the controller to do
  EXPECT_EQ(Describe()["BackupRetentionPeriod"], 7);
}

TEST_F(RdsServiceTest, ModifyValidatesAndChangesNothingOnBadInput) {
  Create();
  SetStatus("available");
  const FormParams id = {{"DBInstanceIdentifier", kId}};
  auto with = [&](FormParams extra) {
    extra.insert(id.begin(), id.end());
    return extra;
  };
  ExpectRefused("ModifyDBInstance", with({{"BackupRetentionPeriod", "36"}}), "InvalidParameterValue");
  ExpectRefused("ModifyDBInstance", with({{"MasterUserPassword", "short"}}), "InvalidParameterValue");
  ExpectRefused("ModifyDBInstance", with({{"MasterUserPassword", "with@sign1"}}), "InvalidParameterValue");
  ExpectRefused("ModifyDBInstance", with({{"DBInstanceClass", "db.x9.huge"}}), "InvalidParameterCombination");
  ExpectRefused("ModifyDBInstance", with({{"PreferredBackupWindow", "10:00"}}), "InvalidParameterValue");
  ExpectRefused("ModifyDBInstance", with({{"PreferredMaintenanceWindow", "mon:10:00-mon:10:05"}}),
                "InvalidParameterValue");
  const std::string maintenance = Stored()["PreferredMaintenanceWindow"];
  const std::string clashing = maintenance.substr(4, 5) + "-" + maintenance.substr(14, 5);
  ExpectRefused("ModifyDBInstance", with({{"PreferredBackupWindow", clashing}}), "InvalidParameterValue");
  ExpectRefused("ModifyDBInstance", with({{"AllocatedStorage", "10"}}), "InvalidParameterCombination");
  ExpectRefused("ModifyDBInstance", with({{"MultiAZ", "maybe"}}), "InvalidParameterValue");
  ExpectRefused("ModifyDBInstance", with({{"VpcSecurityGroupIds.VpcSecurityGroupId.1", "sg-xyz"}}),
                "InvalidParameterValue");
  EXPECT_EQ(Secret()["PasswordSeq"], 1);
}

TEST_F(RdsServiceTest, ModifyWithoutApplyImmediatelyWaitsInPendingModifiedValues) {
  Create();
  SetStatus("available");
  Json r = MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId},
                                         {"MultiAZ", "false"},
                                         {"DBInstanceClass", "db.m5.large"},
                                         {"BackupRetentionPeriod", "0"}})["DBInstance"];
  EXPECT_EQ(r["PendingModifiedValues"],
            Json::parse(R"({"DBInstanceClass":"db.m5.large","BackupRetentionPeriod":0,"MultiAZ":false})"));
  EXPECT_EQ(r["DBInstanceStatus"], "available");
  EXPECT_EQ(r["MultiAZ"], true);
  EXPECT_EQ(r["BackupRetentionPeriod"], 1);
  Json db = Stored();
  EXPECT_EQ(db["Spec"]["MultiAZ"], true);  // the controller is not asked to act yet
  EXPECT_EQ(db["Spec"]["DBInstanceClass"], "db.t3.medium");

  // Asking again for what is in force drops the pending change.
  r = MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"MultiAZ", "true"}})["DBInstance"];
  EXPECT_FALSE(r["PendingModifiedValues"].contains("MultiAZ"));

  // ApplyImmediately applies this change and everything still pending.
  r = MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId},
                                    {"AutoMinorVersionUpgrade", "false"},
                                    {"ApplyImmediately", "true"}})["DBInstance"];
  db = Stored();
  EXPECT_EQ(db["PendingModifiedValues"], Json::object());
  EXPECT_EQ(db["Spec"]["DBInstanceClass"], "db.m5.large");
  EXPECT_EQ(db["BackupRetentionPeriod"], 0);
  EXPECT_EQ(db["AutoMinorVersionUpgrade"], false);
  EXPECT_EQ(r["DBInstanceStatus"], "modifying");
  // The class change is under way until the controller records the new class.
  EXPECT_EQ(r["PendingModifiedValues"], Json::parse(R"({"DBInstanceClass":"db.m5.large"})"));
  Json events = Events({{"SourceType", "db-instance"}, {"SourceIdentifier", kId}});
  std::vector<std::string> messages;
  for (const auto& e : events) messages.push_back(e["Message"]);
  EXPECT_EQ(messages, (std::vector<std::string>{"Applying modification to database instance class",
                                                "Disabled automated backups"}));
}

TEST_F(RdsServiceTest, ModifyMultiAzImmediatelyAsksTheController) {
  Create();
  SetStatus("available");
  Json r = MustCall("ModifyDBInstance",
                    {{"DBInstanceIdentifier", kId}, {"MultiAZ", "false"}, {"ApplyImmediately", "true"}})["DBInstance"];
  EXPECT_EQ(r["DBInstanceStatus"], "modifying");
  EXPECT_EQ(r["MultiAZ"], true);  // what is, until the controller has removed the standby
  EXPECT_EQ(r["PendingModifiedValues"], Json::parse(R"({"MultiAZ":false})"));
  EXPECT_EQ(Stored()["Spec"]["MultiAZ"], false);
  SetStatus("available");  // the controller done
  r = Describe();
  EXPECT_EQ(r["MultiAZ"], false);
  EXPECT_EQ(r["PendingModifiedValues"], Json::object());
  // Modifying to what already is asks nothing.
  r = MustCall("ModifyDBInstance",
               {{"DBInstanceIdentifier", kId}, {"MultiAZ", "false"}, {"ApplyImmediately", "true"}})["DBInstance"];
  EXPECT_EQ(r["DBInstanceStatus"], "available");
}

TEST_F(RdsServiceTest, ModifyPasswordBumpsTheSecretAndShowsOnlyAMask) {
  Create();
  SetStatus("available");
  const std::string fresh = "An0ther-Passw0rd";
  Json r = MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"MasterUserPassword", fresh}})["DBInstance"];
  EXPECT_EQ(r["PendingModifiedValues"], Json::parse(R"({"MasterUserPassword":"****"})"));
  EXPECT_EQ(r["DBInstanceStatus"], "modifying");
  EXPECT_EQ(Secret()["MasterUserPassword"], fresh);
  EXPECT_EQ(Secret()["PasswordSeq"], 2);
  EXPECT_EQ(r.dump().find(fresh), std::string::npos);
  EXPECT_EQ(Stored().dump().find(fresh), std::string::npos);
  EXPECT_EQ(Xml("ModifyDBInstance", Json{{"DBInstance", r}}).find(fresh), std::string::npos);
  // The controller's own fields of the secret are kept.
  Json secret = Secret();
  secret["AdminPassword"] = "admin-secret";
  ASSERT_TRUE(store_->Put(kind::kDbInstanceSecret, kId, secret).ok());
  SetStatus("available");
  MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"MasterUserPassword", "Third-Passw0rd"}});
  EXPECT_EQ(Secret()["AdminPassword"], "admin-secret");
  EXPECT_EQ(Secret()["PasswordSeq"], 3);
}

TEST_F(RdsServiceTest, ModifyWindowsAndSecurityGroups) {
  Create();
  SetStatus("available");
  Json r = MustCall("ModifyDBInstance", {{"DBInstanceIdentifier", kId},
                                         {"PreferredBackupWindow", "03:00-03:30"},
                                         {"PreferredMaintenanceWindow", "Wed:05:00-Wed:06:00"},
                                         {"VpcSecurityGroupIds.VpcSecurityGroupId.1", "sg-0123456789abcdef0"},
                                         {"DeletionProtection", "true"}})["DBInstance"];
  EXPECT_EQ(r["PreferredBackupWindow"], "03:00-03:30");
  EXPECT_EQ(r["PreferredMaintenanceWindow"], "wed:05:00-wed:06:00");
  EXPECT_EQ(r["VpcSecurityGroups"][0]["VpcSecurityGroupId"], "sg-0123456789abcdef0");
  EXPECT_EQ(r["VpcSecurityGroups"].size(), 1u);
  EXPECT_EQ(r["DeletionProtection"], true);
  EXPECT_EQ(r["DBInstanceStatus"], "available");
}

// ---- Reboot, Delete, Stop, Start ------------------------------------------------------------------------------

TEST_F(RdsServiceTest, RebootBumpsTheSequenceAndForceFailoverNeedsMultiAz) {
  Create();
  ExpectRefused("RebootDBInstance", {{"DBInstanceIdentifier", kId}}, "InvalidDBInstanceState");
  SetStatus("available");
  Json r = MustCall("RebootDBInstance", {{"DBInstanceIdentifier", kId}, {"ForceFailover", "true"}})["DBInstance"];
  EXPECT_EQ(r["DBInstanceStatus"], "rebooting");
  EXPECT_EQ(Stored()["Spec"]["RebootSeq"], 1);
  EXPECT_EQ(Stored()["Spec"]["RebootForceFailover"], true);
  SetStatus("available");
  MustCall("RebootDBInstance", {{"DBInstanceIdentifier", kId}});
  EXPECT_EQ(Stored()["Spec"]["RebootSeq"], 2);
  EXPECT_EQ(Stored()["Spec"]["RebootForceFailover"], false);

  Create("single", {{"MultiAZ", "false"}});
  SetStatus("available", "single");
  ExpectRefused("RebootDBInstance", {{"DBInstanceIdentifier", "single"}, {"ForceFailover", "true"}},
                "InvalidParameterCombination");
  ExpectRefused("RebootDBInstance", {{"DBInstanceIdentifier", "nope"}}, "DBInstanceNotFound", 404);
}

TEST_F(RdsServiceTest, DeleteRules) {
  Create();
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}}, "InvalidParameterCombination");
  ExpectRefused("DeleteDBInstance",
                {{"DBInstanceIdentifier", kId}, {"SkipFinalSnapshot", "true"}, {"FinalDBSnapshotIdentifier", "final"}},
                "InvalidParameterCombination");
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"FinalDBSnapshotIdentifier", "1bad"}},
                "InvalidParameterValue");
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", "nope"}, {"SkipFinalSnapshot", "true"}},
                "DBInstanceNotFound", 404);
  // Deleting while it is still being created is allowed, as in RDS.
  Json r = MustCall("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"SkipFinalSnapshot", "true"}})["DBInstance"];
  EXPECT_EQ(r["DBInstanceStatus"], "deleting");
  EXPECT_EQ(Stored()["Spec"]["Deleting"], true);
  EXPECT_EQ(Stored()["Spec"]["DeleteAutomatedBackups"], true);
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", kId}, {"SkipFinalSnapshot", "true"}},
                "InvalidDBInstanceState");

  Create("kept", {{"DeletionProtection", "true"}});
  ExpectRefused("DeleteDBInstance", {{"DBInstanceIdentifier", "kept"}, {"SkipFinalSnapshot", "true"}},
                "InvalidParameterCombination");
  Create("snap");
  SetStatus("available", "snap");  // a final snapshot needs a running instance (db_snapshots_test.cc)
  MustCall("DeleteDBInstance", {{"DBInstanceIdentifier", "snap"},
                                {"FinalDBSnapshotIdentifier", "Snap-Final"},
                                {"DeleteAutomatedBackups", "false"}});
  EXPECT_EQ(Stored("snap")["Spec"]["FinalDBSnapshotIdentifier"], "snap-final");
  EXPECT_EQ(Stored("snap")["Spec"]["DeleteAutomatedBackups"], false);
}

TEST_F(RdsServiceTest, StopAndStartRules) {
  Create();
  ExpectRefused("StopDBInstance", {{"DBInstanceIdentifier", kId}}, "InvalidDBInstanceState");
  ExpectRefused("StartDBInstance", {{"DBInstanceIdentifier", kId}}, "InvalidDBInstanceState");
  SetStatus("available");
  ExpectRefused("StartDBInstance", {{"DBInstanceIdentifier", kId}}, "InvalidDBInstanceState");
  Json r = MustCall("StopDBInstance", {{"DBInstanceIdentifier", kId}})["DBInstance"];
  EXPECT_EQ(r["DBInstanceStatus"], "stopping");
  EXPECT_EQ(Stored()["Spec"]["Running"], false);
  ExpectRefused("StopDBInstance", {{"DBInstanceIdentifier", kId}}, "InvalidDBInstanceState");
  SetStatus("stopped");
  ExpectRefused("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"BackupRetentionPeriod", "3"}},
                "InvalidDBInstanceState");
  r = MustCall("StartDBInstance", {{"DBInstanceIdentifier", kId}})["DBInstance"];
  EXPECT_EQ(r["DBInstanceStatus"], "starting");
  EXPECT_EQ(Stored()["Spec"]["Running"], true);
  ExpectRefused("StopDBInstance", {{"DBInstanceIdentifier", "nope"}}, "DBInstanceNotFound", 404);
}

// ---- Events ---------------------------------------------------------------------------------------------------

TEST_F(RdsServiceTest, EventsFilterByTimeSourceAndCategory) {
  Create("a");
  Create("b");
  auto add = [&](const std::string& id, const std::string& event, const std::string& message,
                 const std::string& category) {
    std::vector<StoreWrite> writes;
    rds::AddEvent(ctx_, "db-instance", id, event, message, {category}, &writes);
    ASSERT_TRUE(store_->Commit(writes).ok());
  };
  clock_.Set(1764590400000);  // 12:00
  add("a", "0005", "DB instance created", "creation");
  clock_.Advance(29 * 60000);  // 12:29
  add("b", "0005", "DB instance created", "creation");
  clock_.Advance(61 * 60000);  // 13:30
  add("a", "0013", "Multi-AZ instance failover started", "failover");

  // Default: the last hour.
  Json e = Events();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["Message"], "Multi-AZ instance failover started");
  EXPECT_EQ(e[0]["SourceArn"], "arn:aws:rds:us-west-2:123456789012:db:a");
  EXPECT_EQ(e[0]["EventCategories"], Json::array({"failover"}));
  EXPECT_EQ(e[0]["Date"], IsoTimeMillis(1764590400000 + 90 * 60000));
  EXPECT_EQ(Events({{"Duration", "120"}}).size(), 3u);
  EXPECT_EQ(Events({{"Duration", "120"}, {"SourceType", "db-instance"}, {"SourceIdentifier", "A"}}).size(), 2u);
  EXPECT_EQ(Events({{"Duration", "120"}, {"SourceType", "db-snapshot"}}).size(), 0u);
  EXPECT_EQ(Events({{"Duration", "120"}, {"EventCategories.EventCategory.1", "creation"}}).size(), 2u);
  EXPECT_EQ(Events({{"StartTime", "2025-12-01T12:15:00Z"}, {"EndTime", "2025-12-01T12:45:00Z"}}).size(), 1u);
  // Oldest first.
  Json all = Events({{"Duration", "120"}});
  EXPECT_EQ(all[0]["SourceIdentifier"], "a");
  EXPECT_EQ(all[1]["SourceIdentifier"], "b");

  ExpectRefused("DescribeEvents", {{"SourceType", "db-toaster"}}, "InvalidParameterValue");
  ExpectRefused("DescribeEvents", {{"SourceIdentifier", "a"}}, "InvalidParameterCombination");
  ExpectRefused("DescribeEvents", {{"StartTime", "yesterday"}}, "InvalidParameterValue");
  ExpectRefused("DescribeEvents", {{"MaxRecords", "5"}}, "InvalidParameterValue");
}

TEST_F(RdsServiceTest, EventsPage) {
  clock_.Set(1764590400000);
  std::vector<StoreWrite> writes;
  for (int i = 0; i < 30; ++i) rds::AddEvent(ctx_, "db-instance", "a", "0006", "DB instance restarted", {"availability"}, &writes);
  ASSERT_TRUE(store_->Commit(writes).ok());
  Json first = MustCall("DescribeEvents", {{"MaxRecords", "20"}});
  ASSERT_EQ(first["Events"].size(), 20u);
  Json second = MustCall("DescribeEvents", {{"MaxRecords", "20"}, {"Marker", first["Marker"]}});
  EXPECT_EQ(second["Events"].size(), 10u);
  EXPECT_FALSE(second.contains("Marker"));
}

TEST_F(RdsServiceTest, EventsAreKeptFourteenDays) {
  clock_.Set(1764590400000);
  auto add = [&] {
    std::vector<StoreWrite> writes;
    rds::AddEvent(ctx_, "db-instance", "a", "0006", "DB instance restarted", {"availability"}, &writes);
    ASSERT_TRUE(store_->Commit(writes).ok());
  };
  add();
  clock_.Advance(13LL * 24 * 3600 * 1000);
  add();
  EXPECT_EQ(store_->Count(kind::kRdsEvent), 2u);
  clock_.Advance(2LL * 24 * 3600 * 1000);
  add();  // the first is now 15 days old
  EXPECT_EQ(store_->Count(kind::kRdsEvent), 2u);
  EXPECT_EQ(MustCall("DescribeEvents", {{"Duration", "40000"}})["Events"].size(), 2u);
}

// ---- Engine versions and orderable options --------------------------------------------------------------------

TEST_F(RdsServiceTest, EngineVersionsSayWhatRuns) {
  Json all = MustCall("DescribeDBEngineVersions", {})["DBEngineVersions"];
  EXPECT_GE(all.size(), 3u);
  Json mysql = MustCall("DescribeDBEngineVersions", {{"Engine", "mysql"}, {"DefaultOnly", "true"}})["DBEngineVersions"];
  ASSERT_EQ(mysql.size(), 1u);
  EXPECT_EQ(mysql[0]["EngineVersion"], "8.0.39");
  EXPECT_EQ(mysql[0]["DBParameterGroupFamily"], "mysql8.0");
  EXPECT_NE(mysql[0]["DBEngineVersionDescription"].get<std::string>().find("MariaDB 10.11"), std::string::npos);
  EXPECT_EQ(MustCall("DescribeDBEngineVersions", {{"Engine", "oracle-ee"}})["DBEngineVersions"].size(), 0u);
  const std::string xml = Xml("DescribeDBEngineVersions", MustCall("DescribeDBEngineVersions", {{"Engine", "mariadb"}}));
  EXPECT_NE(xml.find("<DBEngineVersions><DBEngineVersion><Engine>mariadb</Engine>"), std::string::npos) << xml;
}

TEST_F(RdsServiceTest, OrderableOptionsListEveryClassAndPage) {
  Json one = MustCall("DescribeOrderableDBInstanceOptions",
                      {{"Engine", "mysql"}, {"EngineVersion", "8.0.39"}, {"DBInstanceClass", "db.t3.medium"}});
  ASSERT_EQ(one["OrderableDBInstanceOptions"].size(), 2u);  // gp2 and gp3
  const Json& o = one["OrderableDBInstanceOptions"][0];
  EXPECT_EQ(o["MultiAZCapable"], true);
  EXPECT_EQ(o["MinStorageSize"], 20);
  EXPECT_EQ(o["AvailabilityZones"].size(), 3u);
  Json first = MustCall("DescribeOrderableDBInstanceOptions", {{"Engine", "mysql"}, {"MaxRecords", "20"}});
  EXPECT_EQ(first["OrderableDBInstanceOptions"].size(), 20u);
  EXPECT_TRUE(first.contains("Marker"));
  size_t total = first["OrderableDBInstanceOptions"].size();
  std::string marker = first["Marker"];
  for (int i = 0; i < 10 && !marker.empty(); ++i) {
    Json next = MustCall("DescribeOrderableDBInstanceOptions",
                         {{"Engine", "mysql"}, {"MaxRecords", "20"}, {"Marker", marker}});
    total += next["OrderableDBInstanceOptions"].size();
    marker = next.value("Marker", "");
  }
  EXPECT_EQ(total, 2 * 2 * rds::DbInstanceClasses().size());  // two mysql versions, two storage types
  const std::string xml = Xml("DescribeOrderableDBInstanceOptions", one);
  EXPECT_NE(xml.find("<AvailabilityZones><AvailabilityZone><Name>us-west-2a</Name></AvailabilityZone>"),
            std::string::npos);
  ExpectRefused("DescribeOrderableDBInstanceOptions", {}, "InvalidParameterValue");
}

TEST_F(RdsServiceTest, InstanceClassCatalog) {
  const rds::DbInstanceClass* c = rds::FindDbInstanceClass("db.t3.medium");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->vcpus, 2);
  EXPECT_EQ(c->memory_gib, 4);
  EXPECT_NE(rds::FindDbInstanceClass("db.m5.large"), nullptr);
  EXPECT_NE(rds::FindDbInstanceClass("db.t3.micro"), nullptr);
  EXPECT_EQ(rds::FindDbInstanceClass("db.x9.huge"), nullptr);
}

// ---- Tags -----------------------------------------------------------------------------------------------------

TEST_F(RdsServiceTest, TagsAddListRemove) {
  Create();
  const std::string arn = Stored()["DBInstanceArn"];
  EXPECT_EQ(MustCall("AddTagsToResource", {{"ResourceName", arn},
                                           {"Tags.Tag.1.Key", "env"},
                                           {"Tags.Tag.1.Value", "prod"},
                                           {"Tags.Tag.2.Key", "team"},
                                           {"Tags.Tag.2.Value", "data"}}),
            Json());
  MustCall("AddTagsToResource", {{"ResourceName", arn}, {"Tags.Tag.1.Key", "env"}, {"Tags.Tag.1.Value", "stage"}});
  EXPECT_EQ(MustCall("ListTagsForResource", {{"ResourceName", arn}})["TagList"],
            Json::parse(R"([{"Key":"env","Value":"stage"},{"Key":"team","Value":"data"}])"));
  MustCall("RemoveTagsFromResource", {{"ResourceName", arn}, {"TagKeys.member.1", "env"}});
  EXPECT_EQ(Describe()["TagList"], Json::parse(R"([{"Key":"team","Value":"data"}])"));
  const std::string xml = Xml("ListTagsForResource", MustCall("ListTagsForResource", {{"ResourceName", arn}}));
  EXPECT_NE(xml.find("<TagList><Tag><Key>team</Key><Value>data</Value></Tag></TagList>"), std::string::npos) << xml;

  ExpectRefused("ListTagsForResource", {{"ResourceName", "arn:aws:rds:us-west-2:123456789012:db:nope"}},
                "DBInstanceNotFound", 404);
  ExpectRefused("AddTagsToResource", {{"ResourceName", "not-an-arn"}, {"Tags.Tag.1.Key", "k"}},
                "InvalidParameterValue");
  ExpectRefused("AddTagsToResource", {{"ResourceName", "arn:aws:rds:us-east-1:123456789012:db:" + std::string(kId)},
                                      {"Tags.Tag.1.Key", "k"}},
                "InvalidParameterValue");
  ExpectRefused("AddTagsToResource", {{"ResourceName", arn}, {"Tags.Tag.1.Key", "aws:owner"}}, "InvalidParameterValue");
  FormParams many = {{"ResourceName", arn}};
  for (int i = 1; i <= 50; ++i) many["Tags.Tag." + std::to_string(i) + ".Key"] = "k" + std::to_string(i);
  ExpectRefused("AddTagsToResource", many, "TagQuotaPerResourceExceeded");  // 51 with "team"
}

}  // namespace
}  // namespace autopipe

// ---- DescribeDBSnapshots, DescribeDBInstanceAutomatedBackups ---------------------------------------------------

namespace autopipe {
namespace {

class RdsSnapshotsTest : public RdsServiceTest {
 protected:
  // Stands in for the backup controller: an automated snapshot of `id` taken at `at` (ms).
  void PutSnapshot(const std::string& id, int64_t at, const std::string& status = "available") {
    const Json db = Stored(id);
    const std::string sid = rds::AutomatedSnapshotId(id, at);
    Json snap = {{"DBSnapshotIdentifier", sid},
                 {"DBInstanceIdentifier", id},
                 {"DbiResourceId", db["DbiResourceId"]},
                 {"SnapshotType", "automated"},
                 {"Status", status},
                 {"PercentProgress", status == "available" ? 100 : 0},
                 {"SnapshotCreateTime", at},
                 {"OriginalSnapshotCreateTime", at},
                 {"BackupEndTime", at + 2000},
                 {"InstanceCreateTime", db["InstanceCreateTime"]},
                 {"Engine", db["Engine"]},
                 {"EngineVersion", db["EngineVersion"]},
                 {"AllocatedStorage", db["AllocatedStorage"]},
                 {"StorageType", db["StorageType"]},
                 {"Port", db["Port"]},
                 {"AvailabilityZone", db["AvailabilityZone"]},
                 {"MasterUsername", db["MasterUsername"]},
                 {"StorePath", "/nowhere"}};
    ASSERT_TRUE(store_->Put(kind::kDbSnapshot, sid, snap).ok());
  }
};

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kT0 = 1'796'083'200'000;  // 2026-12-01 00:00 UTC

TEST_F(RdsSnapshotsTest, ListsFiltersAndPagesAutomatedSnapshots) {
  Create();
  Create("other-db");
  for (int i = 0; i < 25; ++i) PutSnapshot(kId, kT0 + (24 - i) * kMinuteMs);  // stored newest first
  PutSnapshot("other-db", kT0);

  // Oldest first, 20 a page, then the rest after the Marker.
  Json page1 = MustCall("DescribeDBSnapshots", {{"DBInstanceIdentifier", kId}, {"MaxRecords", "20"}});
  ASSERT_EQ(page1["DBSnapshots"].size(), 20u);
  EXPECT_EQ(page1["DBSnapshots"][0]["DBSnapshotIdentifier"], "rds:auto-pipeline-db-2026-12-01-00-00");
  ASSERT_TRUE(page1.contains("Marker"));
  Json page2 =
      MustCall("DescribeDBSnapshots",
               {{"DBInstanceIdentifier", kId}, {"MaxRecords", "20"}, {"Marker", page1["Marker"].get<std::string>()}});
  ASSERT_EQ(page2["DBSnapshots"].size(), 5u);
  EXPECT_EQ(page2["DBSnapshots"][4]["DBSnapshotIdentifier"], "rds:auto-pipeline-db-2026-12-01-00-24");
  EXPECT_FALSE(page2.contains("Marker"));

  // The fields boto3 reads.
  const Json& s = page1["DBSnapshots"][0];
  EXPECT_EQ(s["SnapshotType"], "automated");
  EXPECT_EQ(s["Status"], "available");
  EXPECT_EQ(s["PercentProgress"], 100);
  EXPECT_EQ(s["Engine"], "mysql");
  EXPECT_EQ(s["MasterUsername"], "admin");
  EXPECT_EQ(s["SnapshotCreateTime"], "2026-12-01T00:00:00.000Z");
  EXPECT_EQ(s["DBSnapshotArn"], "arn:aws:rds:us-west-2:123456789012:snapshot:rds:auto-pipeline-db-2026-12-01-00-00");
  EXPECT_FALSE(s.contains("StorePath"));

  // By id, by type, by filter; every instance's when no instance is named.
  EXPECT_EQ(MustCall("DescribeDBSnapshots", {{"DBSnapshotIdentifier", "rds:other-db-2026-12-01-00-00"}})["DBSnapshots"]
                .size(),
            1u);
  EXPECT_EQ(MustCall("DescribeDBSnapshots", {{"DBInstanceIdentifier", kId}, {"SnapshotType", "manual"}})["DBSnapshots"]
                .size(),
            0u);
  EXPECT_EQ(MustCall("DescribeDBSnapshots", {{"Filters.Filter.1.Name", "db-instance-id"},
                                             {"Filters.Filter.1.Values.Value.1", "other-db"}})["DBSnapshots"]
                .size(),
            1u);
  EXPECT_EQ(MustCall("DescribeDBSnapshots", {{"MaxRecords", "100"}})["DBSnapshots"].size(), 26u);

  ExpectRefused("DescribeDBSnapshots", {{"DBSnapshotIdentifier", "rds:nope-2026-12-01-00-00"}}, "DBSnapshotNotFound",
                404);
  ExpectRefused("DescribeDBSnapshots", {{"SnapshotType", "weekly"}}, "InvalidParameterValue");
  ExpectRefused("DescribeDBSnapshots", {{"MaxRecords", "19"}}, "InvalidParameterValue");
  ExpectRefused("DescribeDBSnapshots",
                {{"DBInstanceIdentifier", kId}, {"DBSnapshotIdentifier", "rds:other-db-2026-12-01-00-00"}},
                "InvalidParameterCombination");
  std::string xml = Xml("DescribeDBSnapshots", page2);
  EXPECT_NE(xml.find("<DBSnapshots><DBSnapshot>"), std::string::npos) << xml;
}

TEST_F(RdsSnapshotsTest, AutomatedBackupsAndTheirRestoreWindow) {
  Create();
  PutSnapshot(kId, kT0);
  PutSnapshot(kId, kT0 + 24 * 60 * kMinuteMs);
  PutSnapshot(kId, kT0 + 25 * 60 * kMinuteMs, "creating");  // not restorable yet
  Json db = Stored();
  db["LatestRestorableTime"] = kT0 + 30 * 60 * kMinuteMs;
  ASSERT_TRUE(store_->Put(kind::kDbInstance, kId, db).ok());

  Json r = MustCall("DescribeDBInstanceAutomatedBackups", {{"DBInstanceIdentifier", kId}});
  ASSERT_EQ(r["DBInstanceAutomatedBackups"].size(), 1u);
  const Json& b = r["DBInstanceAutomatedBackups"][0];
  EXPECT_EQ(b["Status"], "active");
  EXPECT_EQ(b["DBInstanceIdentifier"], kId);
  EXPECT_EQ(b["DbiResourceId"], db["DbiResourceId"]);
  EXPECT_EQ(b["RestoreWindow"]["EarliestTime"], "2026-12-01T00:00:02.000Z");  // the oldest backup's end
  EXPECT_EQ(b["RestoreWindow"]["LatestTime"], "2026-12-02T06:00:00.000Z");
  EXPECT_EQ(b["BackupRetentionPeriod"], 1);

  ExpectRefused("DescribeDBInstanceAutomatedBackups", {{"DBInstanceIdentifier", "nope"}},
                "DBInstanceAutomatedBackupNotFound", 404);
  // Deleted with DeleteAutomatedBackups=false: the snapshots are kept (marked Retained); the instance's entry then
  // comes from them, `retained`.
  SetStatus("available");
  MustCall("DeleteDBInstance",
           {{"DBInstanceIdentifier", kId}, {"SkipFinalSnapshot", "true"}, {"DeleteAutomatedBackups", "false"}});
  for (const auto& snap : store_->List(kind::kDbSnapshot)) EXPECT_TRUE((*snap).value("Retained", false));
  ASSERT_TRUE(store_->Delete(kind::kDbInstance, kId).ok());  // what the controller does once it is gone
  r = MustCall("DescribeDBInstanceAutomatedBackups", {{"DBInstanceIdentifier", kId}});
  ASSERT_EQ(r["DBInstanceAutomatedBackups"].size(), 1u);
  EXPECT_EQ(r["DBInstanceAutomatedBackups"][0]["Status"], "retained");
}

TEST_F(RdsSnapshotsTest, PointInTimeRestoreRefusesBadInputAndRecordsTheChosenBackup) {
  Create();
  PutSnapshot(kId, kT0);
  PutSnapshot(kId, kT0 + 60 * kMinuteMs);
  Json db = Stored();
  db["LatestRestorableTime"] = kT0 + 90 * kMinuteMs;
  ASSERT_TRUE(store_->Put(kind::kDbInstance, kId, db).ok());
  const std::string op = "RestoreDBInstanceToPointInTime";
  auto params = [](FormParams extra) {
    FormParams p = {{"SourceDBInstanceIdentifier", kId}, {"TargetDBInstanceIdentifier", "r1"}};
    for (const auto& [k, v] : extra) p[k] = v;
    return p;
  };
  // Every refusal changes nothing (ExpectRefused checks the store's revision).
  ExpectRefused(op, params({{"RestoreTime", "2026-12-01T01:10:00Z"}, {"UseLatestRestorableTime", "true"}}),
                "InvalidParameterCombination");
  ExpectRefused(op, params({}), "InvalidParameterCombination");
  ExpectRefused(op, params({{"RestoreTime", "2026-12-01T01:31:00Z"}}), "InvalidRestoreFault");  // after the latest
  ExpectRefused(op, params({{"RestoreTime", "2026-12-01T00:00:01Z"}}), "InvalidRestoreFault");  // before the earliest
  ExpectRefused(op, params({{"RestoreTime", "yesterday"}}), "InvalidParameterValue");
  ExpectRefused(op, params({{"RestoreToGtid", "0-1"}}), "InvalidParameterValue");
  ExpectRefused(op, params({{"RestoreToGtid", "0-1-5"}, {"UseLatestRestorableTime", "true"}}),
                "InvalidParameterCombination");
  ExpectRefused(op, params({{"SourceDBInstanceIdentifier", "nope"}, {"UseLatestRestorableTime", "true"}}),
                "DBInstanceNotFound", 404);
  ExpectRefused(op, {{"SourceDbiResourceId", "db-NOPE"}, {"TargetDBInstanceIdentifier", "r1"}, {"UseLatestRestorableTime", "true"}},
                "DBInstanceAutomatedBackupNotFound", 404);
  ExpectRefused(op, params({{"TargetDBInstanceIdentifier", kId}, {"UseLatestRestorableTime", "true"}}),
                "DBInstanceAlreadyExists");
  ExpectRefused(op, params({{"UseLatestRestorableTime", "true"}, {"MultiAZ", "true"}, {"AvailabilityZone", "us-west-2a"}}),
                "InvalidParameterCombination");

  // 01:10 starts from the 01:00 backup; the new instance is a new resource, creating, Multi-AZ only when asked.
  Json r = MustCall(op, params({{"RestoreTime", "2026-12-01T01:10:00.700Z"}, {"DBInstanceClass", "db.t3.small"}}));
  EXPECT_EQ(r["DBInstance"]["DBInstanceStatus"], "creating");
  EXPECT_EQ(r["DBInstance"]["MultiAZ"], false);
  const Json restored = Stored("r1");
  EXPECT_EQ(restored["Restore"]["SourceSnapshot"], "rds:auto-pipeline-db-2026-12-01-01-00");
  EXPECT_EQ(restored["Restore"]["TargetTime"], kT0 + 70 * kMinuteMs + 700);
  EXPECT_EQ(restored["Restore"]["State"], "pending");
  EXPECT_EQ(restored["DBInstanceClass"], "db.t3.small");
  EXPECT_EQ(restored["Spec"]["MultiAZ"], false);
  EXPECT_NE(restored["DbiResourceId"], db["DbiResourceId"]);
  EXPECT_EQ(restored["MasterUsername"], "admin");
  EXPECT_EQ(store_->Get(kind::kDbInstanceSecret, "r1")->value("PasswordSeq", -1), 0);

  // Retention 0: no point-in-time restore.
  db = Stored();
  db["BackupRetentionPeriod"] = 0;
  ASSERT_TRUE(store_->Put(kind::kDbInstance, kId, db).ok());
  ExpectRefused(op, params({{"TargetDBInstanceIdentifier", "r2"}, {"UseLatestRestorableTime", "true"}}),
                "PointInTimeRestoreNotEnabled");

  // From a snapshot: its backup must be in the store.
  ExpectRefused("RestoreDBInstanceFromDBSnapshot",
                {{"DBInstanceIdentifier", "r3"}, {"DBSnapshotIdentifier", "rds:auto-pipeline-db-2026-12-01-00-00"}},
                "InvalidDBSnapshotState");
  ExpectRefused("RestoreDBInstanceFromDBSnapshot", {{"DBInstanceIdentifier", "r3"}, {"DBSnapshotIdentifier", "nope"}},
                "DBSnapshotNotFound", 404);
}

// ---- read replicas (rds/db_replicas.h) ------------------------------------------------------------------------

TEST_F(RdsServiceTest, ReadReplicaInRegionRegistersOnTheSourceAndRendersBothSides) {
  Create();
  SetStatus("available");
  Json r = MustCall("CreateDBInstanceReadReplica",
                    {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", kId}})["DBInstance"];
  EXPECT_EQ(r["ReadReplicaSourceDBInstanceIdentifier"], kId);
  EXPECT_EQ(r["DBInstanceClass"], "db.t3.medium");
  EXPECT_EQ(r["BackupRetentionPeriod"], 0);
  EXPECT_EQ(r["MultiAZ"], false);
  EXPECT_EQ(Describe()["ReadReplicaDBInstanceIdentifiers"], Json::array({"rr1"}));
  const Json source_secret = Secret();
  const std::string user = Stored("rr1")["ReadReplica"]["User"];
  EXPECT_FALSE(source_secret["ReplicaUserPasswords"][user].get<std::string>().empty());
  EXPECT_EQ(Secret("rr1")["ReplicaSourcePassword"], source_secret["ReplicaUserPasswords"][user]);
  // No password anywhere in what the API shows.
  EXPECT_EQ(Xml("DescribeDBInstances", MustCall("DescribeDBInstances", {})).find(
                source_secret["ReplicaUserPasswords"][user].get<std::string>()),
            std::string::npos);

  // Retention 0 on a source with replicas, and a promotion of what is not a replica, are refused.
  ExpectRefused("ModifyDBInstance", {{"DBInstanceIdentifier", kId}, {"BackupRetentionPeriod", "0"},
                                     {"ApplyImmediately", "true"}},
                "InvalidParameterCombination");
  ExpectRefused("PromoteReadReplica", {{"DBInstanceIdentifier", kId}}, "InvalidDBInstanceState");
  // Still seeding: not yet promotable.
  ExpectRefused("PromoteReadReplica", {{"DBInstanceIdentifier", "rr1"}}, "InvalidDBInstanceState");

  // Replicating and available: promoted; the source stops listing it at once.
  Json doc = Stored("rr1");
  doc["ReadReplica"]["State"] = "replicating";
  doc["DBInstanceStatus"] = "available";
  ASSERT_TRUE(store_->Put(kind::kDbInstance, "rr1", doc).ok());
  Json p = MustCall("PromoteReadReplica", {{"DBInstanceIdentifier", "rr1"}, {"BackupRetentionPeriod", "5"}})["DBInstance"];
  EXPECT_EQ(p["DBInstanceStatus"], "modifying");
  EXPECT_EQ(Stored("rr1")["ReadReplica"]["State"], "promoting");
  EXPECT_EQ(Stored("rr1")["Spec"]["PromoteBackupRetentionPeriod"], 5);
  EXPECT_EQ(Describe()["ReadReplicaDBInstanceIdentifiers"], Json::array());
}

TEST_F(RdsServiceTest, ReadReplicaErrorsChangeNothing) {
  Create();
  SetStatus("available");
  Create("nobackups", {{"MultiAZ", ""}, {"BackupRetentionPeriod", "0"}});
  SetStatus("available", "nobackups");
  Create("busy", {{"MultiAZ", ""}});  // still creating
  ExpectRefused("CreateDBInstanceReadReplica", {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", "nope"}},
                "DBInstanceNotFound", 404);
  ExpectRefused("CreateDBInstanceReadReplica",
                {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", "nobackups"}}, "InvalidDBInstanceState");
  ExpectRefused("CreateDBInstanceReadReplica", {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", "busy"}},
                "InvalidDBInstanceState");
  ExpectRefused("CreateDBInstanceReadReplica",
                {{"DBInstanceIdentifier", "nobackups"}, {"SourceDBInstanceIdentifier", kId}}, "DBInstanceAlreadyExists");
  ExpectRefused("CreateDBInstanceReadReplica",
                {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", kId}, {"DBInstanceClass", "db.x9.huge"}},
                "InvalidParameterCombination");
  ExpectRefused("CreateDBInstanceReadReplica",
                {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", kId}, {"MultiAZ", "true"}},
                "InvalidParameterCombination");
  // A region this region's partition does not have (here: no partition at all).
  ExpectRefused("CreateDBInstanceReadReplica",
                {{"DBInstanceIdentifier", "rr1"},
                 {"SourceDBInstanceIdentifier", "arn:aws:rds:eu-west-3:123456789012:db:" + std::string(kId)}},
                "DBInstanceNotFound", 404);
  ExpectRefused("CreateDBInstanceReadReplica",
                {{"DBInstanceIdentifier", "rr1"}, {"SourceDBInstanceIdentifier", "arn:aws:rds:x"}},
                "InvalidParameterValue");
}

}  // namespace
// ---- DB subnet groups -----------------------------------------------------------------------------------------

TEST_F(RdsServiceTest, SubnetGroupsPlaceInstancesAndAreKeptWhileInUse) {
  const std::string a = ec2::DefaultSubnetId(*ctx_.catalog, "us-west-2a");
  const std::string b = ec2::DefaultSubnetId(*ctx_.catalog, "us-west-2b");
  const std::string c = ec2::DefaultSubnetId(*ctx_.catalog, "us-west-2c");
  auto group = [](const std::string& name, const std::vector<std::string>& subnets) {
    FormParams p = {{"DBSubnetGroupName", name}, {"DBSubnetGroupDescription", "d"}};
    for (size_t i = 0; i < subnets.size(); ++i) p["SubnetIds.SubnetIdentifier." + std::to_string(i + 1)] = subnets[i];
    return p;
  };
  ExpectRefused("CreateDBSubnetGroup", group("g", {a}), "DBSubnetGroupDoesNotCoverEnoughAZs");
  ExpectRefused("CreateDBSubnetGroup", group("g", {a, "subnet-0123456789abcdef0"}), "InvalidSubnet");
  ExpectRefused("CreateDBSubnetGroup", group("default", {a, b}), "InvalidParameterValue");
  ExpectRefused("CreateDBSubnetGroup", {{"DBSubnetGroupName", "g"}, {"SubnetIds.SubnetIdentifier.1", a},
                                        {"SubnetIds.SubnetIdentifier.2", b}}, "InvalidParameterValue");
  Json g = MustCall("CreateDBSubnetGroup", group("G", {c, b}))["DBSubnetGroup"];
  EXPECT_EQ(g["DBSubnetGroupName"], "g");
  EXPECT_EQ(g["VpcId"], ec2::DefaultVpcId(*ctx_.catalog));
  EXPECT_EQ(g["Subnets"][0]["SubnetIdentifier"], b);  // in zone order
  EXPECT_EQ(g["Subnets"][1]["SubnetAvailabilityZone"]["Name"], "us-west-2c");
  ExpectRefused("CreateDBSubnetGroup", group("g", {a, b}), "DBSubnetGroupAlreadyExists");

  ExpectRefused("CreateDBInstance", CreateParams(kId, {{"DBSubnetGroupName", "nope"}}), "DBSubnetGroupNotFoundFault",
                404);
  ExpectCreateRefused({{"DBSubnetGroupName", "g"}, {"MultiAZ", "false"}, {"AvailabilityZone", "us-west-2a"}},
                      "InvalidParameterCombination");
  Json db = Create(kId, {{"DBSubnetGroupName", "g"}});
  EXPECT_EQ(db["AvailabilityZone"], "us-west-2b");
  EXPECT_EQ(db["DBSubnetGroup"]["DBSubnetGroupName"], "g");
  EXPECT_EQ(db["DBSubnetGroup"]["SubnetGroupStatus"], "Complete");
  EXPECT_EQ(db["DBSubnetGroup"]["Subnets"].size(), 2u);
  EXPECT_FALSE(db["DBSubnetGroup"].contains("DBSubnetGroupArn"));
  EXPECT_EQ(rds::ZonesForInstance(ctx_, Stored()), (std::vector<std::string>{"us-west-2b", "us-west-2c"}));
  EXPECT_EQ(Create("other-db", {{"MultiAZ", "false"}})["DBSubnetGroup"]["DBSubnetGroupName"], "default");

  ExpectRefused("DeleteDBSubnetGroup", {{"DBSubnetGroupName", "g"}}, "InvalidDBSubnetGroupStateFault");
  ExpectRefused("ModifyDBSubnetGroup", group("g", {a, c}), "SubnetAlreadyInUse");
  ExpectRefused("DeleteDBSubnetGroup", {{"DBSubnetGroupName", "default"}}, "InvalidDBSubnetGroupStateFault");
  ExpectRefused("DescribeDBSubnetGroups", {{"DBSubnetGroupName", "nope"}}, "DBSubnetGroupNotFoundFault", 404);
  ExpectRefused("DescribeDBSubnetGroups", {{"MaxRecords", "0"}}, "InvalidParameterValue");
  Json all = MustCall("DescribeDBSubnetGroups", {})["DBSubnetGroups"];
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]["DBSubnetGroupName"], "default");
  EXPECT_EQ(all[0]["Subnets"].size(), ctx_.catalog->availability_zones().size());

  ASSERT_TRUE(store_->Delete(kind::kDbInstance, kId).ok());
  MustCall("DeleteDBSubnetGroup", {{"DBSubnetGroupName", "g"}});
  EXPECT_EQ(store_->Count(kind::kDbSubnetGroup), 0u);
}

}  // namespace autopipe
