using System.Reflection;

namespace Snapshots.Tests;

/// <summary>Every test has exactly one known category, so `scripts/test.sh --fast` never silently skips (or
/// runs) a test by accident: an untagged new test fails here, in CI and in the fast run.</summary>
[Trait("Category", Category.Unit)]
public class CategoryTests
{
    private static string[] CategoriesOf(MemberInfo member) =>
        [
            .. member.GetCustomAttributesData()
                .Where(a => a.AttributeType == typeof(TraitAttribute)
                    && a.ConstructorArguments.Count == 2
                    && (string?)a.ConstructorArguments[0].Value == "Category")
                .Select(a => (string?)a.ConstructorArguments[1].Value ?? ""),
        ];

    private static bool IsTest(MethodInfo m) => m.GetCustomAttributes<FactAttribute>(inherit: true).Any();

    [Fact]
    public void Every_test_has_one_known_category()
    {
        var problems = new List<string>();
        int tests = 0;
        foreach (var type in typeof(CategoryTests).Assembly.GetTypes().Where(t => t.IsClass))
        {
            var methods = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static)
                .Where(IsTest).ToArray();
            if (methods.Length == 0) continue;
            var onClass = CategoriesOf(type);
            foreach (var m in methods)
            {
                tests++;
                var categories = onClass.Concat(CategoriesOf(m)).ToArray();
                var where = $"{type.FullName}.{m.Name}";
                if (categories.Length == 0)
                    problems.Add($"{where} has no [Trait(\"Category\", ...)] on the method or its class");
                else if (categories.Length > 1)
                    problems.Add($"{where} has {categories.Length} categories ({string.Join(", ", categories)})");
                else if (!Category.All.Contains(categories[0]))
                {
                    problems.Add(
                        $"{where} has unknown category '{categories[0]}' (use {string.Join(", ", Category.All)})");
                }
            }
        }
        Assert.True(tests > 50, $"found only {tests} tests: the scan is broken");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
