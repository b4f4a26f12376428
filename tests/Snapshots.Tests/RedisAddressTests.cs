using Snapshots.Store;
using Snapshots.Store.Distributed;

namespace Snapshots.Tests;

/// <summary>The distributed cache's address in StackExchange.Redis's own forms, and the password kept out of
/// everything printed.</summary>
[Trait("Category", Category.Unit)]
public class RedisAddressTests
{
    [Fact]
    public void The_url_forms_carry_user_password_and_tls()
    {
        var a = RedisAddress.Parse("rediss://app:p%40ss%3Aw@h1:6380,h2:6380?layout=whole&deadline=50");
        var config = a.Configuration();
        Assert.True(a.Tls && config.Ssl);
        Assert.Equal("app", config.User);
        Assert.Equal("p@ss:w", config.Password);
        Assert.Equal(["h1:6380", "h2:6380"], a.Endpoints);
        Assert.Equal(CacheLayout.Whole, a.Layout);
        Assert.Equal(TimeSpan.FromMilliseconds(50), a.NodeDeadline);
        Assert.Equal("rediss://app:***@h1:6380,h2:6380?layout=whole&deadline=50", a.Redacted);

        var p = RedisAddress.Parse("redis://:secret@127.0.0.1:7101");
        Assert.False(p.Tls);
        Assert.Null(p.User);
        Assert.Equal("secret", p.Configuration().Password);
        Assert.Equal("redis://:***@127.0.0.1:7101", p.Redacted);
        Assert.Equal("redis 127.0.0.1:7101", p.Describe);
    }

    [Fact]
    public void The_configuration_string_form_is_StackExchange_Redis_own()
    {
        var a = RedisAddress.Parse("10.0.0.1:6379,10.0.0.2:6379,password=s3cret,user=u,ssl=true,connectTimeout=900"
            + "?stripes=3");
        var config = a.Configuration();
        Assert.True(config.Ssl);
        Assert.Equal("u", config.User);
        Assert.Equal("s3cret", config.Password);
        Assert.Equal(TimeSpan.FromMilliseconds(900), a.ConnectTimeout);
        Assert.Equal(3, a.Stripes);
        Assert.Equal(2, a.Endpoints.Count);
        Assert.DoesNotContain("s3cret", a.Redacted);
        Assert.Contains("password=***", a.Redacted);
    }

    [Theory]
    [InlineData("rediss://u:s3cret@nohost?layout=bad", "'nohost' is not HOST:PORT")]
    [InlineData("rediss://u:s3cret@h:1?layout=bad", "layout 'bad'")]
    [InlineData("redis://:s3cret@h:1?ca=/etc/passwd", "needs TLS")]
    [InlineData("rediss://:s3cret@h:1?ca=/nonexistent/ca.pem", "does not exist")]
    [InlineData("rediss://:s3cret@h:1?cert=/x.pem", "needs both cert= and key=")]
    [InlineData("h:1,password=s3cret,bogus=1", "bogus")]
    [InlineData("redis:/nowhere", "expected redis://")]
    public void Errors_name_the_input_and_never_the_password(string address, string expected)
    {
        var ex = Assert.Throws<InvalidInputException>(() => RedisAddress.Parse(address));
        Assert.Contains(expected, ex.Message);
        Assert.Equal("distributed", ex.Parameter);
        Assert.DoesNotContain("s3cret", ex.Message);
        var ok = RedisAddress.Parse(address.StartsWith("redis:/n", StringComparison.Ordinal) ? "redis://:s3cret@h:1"
            : "rediss://:s3cret@h:1");
        Assert.DoesNotContain("s3cret", ok.ToString());
        Assert.DoesNotContain("s3cret", ok.Describe);
    }
}
