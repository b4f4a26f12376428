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

    /// <summary>Before: a password given as a query option (?password=zz) or as a configuration option after a URL
    /// was quoted in the error (in the redacted address and as the bad "HOST:PORT"). Every form is now ***.
    /// </summary>
    [Theory]
    [InlineData("redis://u:pw@h:7390?password=zz")]
    [InlineData("redis://u:pw@h:7390?layout=whole&password=zz")]
    [InlineData("redis://u:pw@h:7390,password=zz")]
    [InlineData("h:7390,password=zz?pass=zz")]
    [InlineData("h:7390,password=zz?layout=bogus")]
    [InlineData("redis://u:zz?x@h:7390?layout=bogus")]
    [InlineData("h:7390?token=zz")]
    public void No_form_of_password_reaches_a_message(string address)
    {
        var ex = Assert.Throws<InvalidInputException>(() => RedisAddress.Parse(address));
        Assert.Equal("distributed", ex.Parameter);
        Assert.DoesNotContain("zz", ex.Message);
        Assert.DoesNotContain("pw", ex.Message);
        Assert.Contains("***", ex.Message);
    }

    /// <summary>Before: a ca= file that is not a certificate escaped as CryptographicException (ASN1 corrupted
    /// data), "a bug in snapctl". It is bad input naming the file and the parameter.</summary>
    [Fact]
    public void A_ca_or_client_certificate_that_is_not_PEM_is_invalid_input_naming_the_file()
    {
        var junk = Path.GetTempFileName();
        try
        {
            File.WriteAllText(junk, "root:x:0:0:root:/root:/bin/bash\n");
            var ca = Assert.Throws<InvalidInputException>(() => RedisAddress.Parse($"rediss://u:s3cret@h:1?ca={junk}"));
            Assert.Equal("distributed", ca.Parameter);
            Assert.Contains($"ca file {junk}", ca.Message);
            Assert.DoesNotContain("s3cret", ca.Message);
            var cert = Assert.Throws<InvalidInputException>(
                () => RedisAddress.Parse($"rediss://u:s3cret@h:1?cert={junk}&key={junk}"));
            Assert.Equal("distributed", cert.Parameter);
            Assert.Contains($"cert file {junk}", cert.Message);
        }
        finally { File.Delete(junk); }
    }
}
