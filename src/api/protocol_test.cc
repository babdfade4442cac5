#include "api/protocol.h"

#include <gtest/gtest.h>

namespace autopipe {
namespace {

ServiceInfo QueryInfo() {
  return {"autoscaling", "2011-01-01", "http://autoscaling.amazonaws.com/doc/2011-01-01/", WireProtocol::kQuery};
}

// A structure with everything the renderings treat specially: nested structures and lists, nulls, text to
// escape, numbers, booleans, empty lists and a list with its own member name.
Json Structure(const std::string& name) {
  Json s(Json::value_t::object);
  s["Name"] = name;
  s["Escaped"] = "a<b>&\"c'\r\n";
  s["Unicode"] = "caf\xC3\xA9 \xF0\x9F\x98\x80 tab\there \x01";
  s["Count"] = 3;
  s["Big"] = uint64_t{18446744073709551615u};
  s["Negative"] = -7;
  s["Ratio"] = 0.5;
  s["On"] = true;
  s["Gone"] = nullptr;
  s["Empty"] = Json::array();
  s["Items"] = Json::array({Json{{"Id", "i-1"}, {"State", nullptr}}, Json{{"Id", "i-2"}, {"State", "ok"}}});
  s["DBInstances"] = Json::array({"db1", "db2"});
  s["Nested"] = Json{{"Inner", Json{{"Leaf", "x"}}}, {"Nothing", nullptr}};
  return s;
}

// What the JSON 1.0 rendering must be: nlohmann's compact dump with nulls left out.
Json WithoutNulls(const Json& v) {
  if (v.is_object()) {
    Json out(Json::value_t::object);
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_null()) out[it.key()] = WithoutNulls(it.value());
    }
    return out;
  }
  if (v.is_array()) {
    Json out(Json::value_t::array);
    for (const auto& e : v) {
      if (!e.is_null()) out.push_back(WithoutNulls(e));
    }
    return out;
  }
  return v;
}

std::string Render(const ServiceInfo& svc, WireProtocol protocol, const Json& result) {
  ApiRequest req;
  req.action = "DescribeThings";
  req.request_id = "r1";
  req.protocol = protocol;
  return RenderResult(svc, req, result).body;
}

TEST(RenderedPartTest, RendersByteForByteAsTheStructureItself) {
  ServiceInfo query = QueryInfo();
  query.list_members = {{"DBInstances", "DBInstance"}};
  ServiceInfo ec2{"ec2", "2016-11-15", "http://ec2.amazonaws.com/doc/2016-11-15/", WireProtocol::kEc2};
  for (const ServiceInfo& svc : {query, ec2}) {
    Json plain = {{"Things", Json::array({Structure("a"), Structure("b")})}, {"NextToken", "2"}, {"Skip", nullptr}};
    Json parted = {{"Things", Json::array({PartValue(RenderPart(svc, Structure("a"))),
                                           PartValue(RenderPart(svc, Structure("b")))})},
                   {"NextToken", "2"},
                   {"Skip", nullptr}};
    EXPECT_EQ(Render(svc, WireProtocol::kJson10, plain),
              WithoutNulls(plain).dump(-1, ' ', false, Json::error_handler_t::replace));
    for (WireProtocol protocol : {svc.protocol, WireProtocol::kJson10}) {
      const std::string want = Render(svc, protocol, plain);
      EXPECT_EQ(Render(svc, protocol, parted), want) << svc.name;
      // A part standing alone as the whole result, or inside an empty-ish envelope, too.
      EXPECT_EQ(Render(svc, protocol, Json{{"Thing", PartValue(RenderPart(svc, Structure("c")))}}),
                Render(svc, protocol, Json{{"Thing", Structure("c")}}));
    }
  }
  // The XML names the list's own members and escapes text as usual.
  RenderedPart part = RenderPart(query, Structure("a"));
  EXPECT_NE(part.xml.find("<DBInstances><DBInstance>db1</DBInstance>"), std::string::npos) << part.xml;
  EXPECT_NE(part.xml.find("<Escaped>a&lt;b&gt;&amp;&quot;c&apos;&#xD;\n</Escaped>"), std::string::npos);
  EXPECT_EQ(part.xml.find("Gone"), std::string::npos) << "nulls are left out";
  EXPECT_EQ(part.json.find("Gone"), std::string::npos) << "nulls are left out";
}

TEST(RenderedPartTest, ExpandPartsGivesWhatAJsonClientReads) {
  ServiceInfo svc = QueryInfo();
  Json parted = {{"Things", Json::array({PartValue(RenderPart(svc, Structure("a")))})}, {"N", 1}};
  Json expanded = ExpandParts(parted);
  EXPECT_EQ(expanded, Json::parse(Render(svc, WireProtocol::kJson10, parted)));
  EXPECT_EQ(expanded["Things"][0]["Items"][1]["State"], "ok");
  EXPECT_FALSE(expanded["Things"][0].contains("Gone"));
  Json plain = {{"A", Json::array({1, 2})}, {"B", nullptr}};
  EXPECT_EQ(ExpandParts(plain), plain) << "a result without parts is left as it is";
}

TEST(RenderedPartCacheTest, RendersEachDocumentOnceAndAChangedDocumentAgain) {
  RenderedPartCache cache;
  int renders = 0;
  auto render = [&](const Json& doc) {
    ++renders;
    return RenderedPart{doc["V"].get<std::string>(), "{}"};
  };
  Doc v1 = std::make_shared<const Json>(Json{{"V", "one"}});
  EXPECT_EQ(cache.Get(v1, render)->xml, "one");
  EXPECT_EQ(cache.Get(v1, render)->xml, "one");
  Doc same_copy = v1;
  EXPECT_EQ(cache.Get(same_copy, render)->xml, "one");
  EXPECT_EQ(renders, 1) << "the same document is rendered once";

  // A changed document is a new Doc, even with equal content.
  Doc v2 = std::make_shared<const Json>(Json{{"V", "two"}});
  EXPECT_EQ(cache.Get(v2, render)->xml, "two");
  Doc v1_again = std::make_shared<const Json>(*v1);
  EXPECT_EQ(cache.Get(v1_again, render)->xml, "one");
  EXPECT_EQ(renders, 3);
}

TEST(RenderedPartCacheTest, ADocumentAtAReusedAddressIsRenderedAfresh) {
  RenderedPartCache cache;
  auto render = [](const Json& doc) { return RenderedPart{doc["V"].get<std::string>(), "{}"}; };
  // Free a document and make new ones until one lands at the old address (the allocator reuses it quickly);
  // the cache must not serve the old document's rendering for it. Separate control blocks (not make_shared),
  // so that the cache's weak reference does not keep the document's memory.
  Doc old(new Json{{"V", "old"}});
  const Json* address = old.get();
  EXPECT_EQ(cache.Get(old, render)->xml, "old");
  old.reset();
  std::vector<Doc> keep;
  for (int i = 0; i < 1000; ++i) {
    Doc fresh(new Json{{"V", "new"}});
    if (fresh.get() == address) {
      EXPECT_EQ(cache.Get(fresh, render)->xml, "new");
      return;
    }
    keep.push_back(std::move(fresh));
  }
  GTEST_SKIP() << "the allocator never reused the address";
}

TEST(RenderedPartCacheTest, EntriesOfDroppedDocumentsAreSweptOut) {
  RenderedPartCache cache;
  auto render = [](const Json&) { return RenderedPart{"x", "{}"}; };
  Doc live = std::make_shared<const Json>(Json{{"V", "live"}});
  (void)cache.Get(live, render);  // only its presence matters here
  for (int i = 0; i < 10000; ++i) {
    Doc gone = std::make_shared<const Json>(Json{{"V", i}});
    (void)cache.Get(gone, render);  // dropped right after, as a replaced stored document is
  }
  EXPECT_LE(cache.size(), 128u);
  int renders = 0;
  (void)cache.Get(live, [&](const Json&) {
    ++renders;
    return RenderedPart{"x", "{}"};
  });
  EXPECT_EQ(renders, 0) << "a live document's entry is kept";
}

}  // namespace
}  // namespace autopipe
