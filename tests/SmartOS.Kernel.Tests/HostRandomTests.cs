namespace SmartOS.Kernel.Tests;

public class HostRandomTests
{
    [Test]
    public void Same_seed_gives_the_same_sequence()
    {
        var a = new HostRandom(7);
        var b = new HostRandom(7);
        var xs = Enumerable.Range(0, 100).Select(_ => a.NextUInt64()).ToArray();
        var ys = Enumerable.Range(0, 100).Select(_ => b.NextUInt64()).ToArray();

        Assert.That(xs, Is.EqualTo(ys));
    }

    [Test]
    public void Different_seeds_give_different_sequences()
    {
        var a = new HostRandom(1);
        var b = new HostRandom(2);

        Assert.That(Enumerable.Range(0, 8).Select(_ => a.NextUInt64()), Is.Not.EqualTo(Enumerable.Range(0, 8).Select(_ => b.NextUInt64())));
    }

    [Test]
    public void First_value_of_seed_zero_is_stable_across_runtimes()
    {
        // xoshiro256** seeded by SplitMix64 is written out in HostRandom, so this value is a
        // property of the code, not of the runtime's System.Random.
        var first = new HostRandom(0).NextUInt64();
        var again = new HostRandom(0).NextUInt64();

        Assert.That(first, Is.EqualTo(again));
        Assert.That(first, Is.Not.Zero);
    }

    [Test]
    public void Derive_differs_by_name_and_by_seed_and_is_stable()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(HostRandom.Derive(1, "h1"), Is.Not.EqualTo(HostRandom.Derive(1, "h2")));
            Assert.That(HostRandom.Derive(1, "h1"), Is.Not.EqualTo(HostRandom.Derive(2, "h1")));
            Assert.That(HostRandom.Derive(1, "h1"), Is.EqualTo(HostRandom.Derive(1, new string(['h', '1']))));
            Assert.That(HostRandom.Derive(1, "ab"), Is.Not.EqualTo(HostRandom.Derive(1, "ba")));
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(7)]
    [TestCase(1000)]
    [TestCase(int.MaxValue)]
    public void Next_stays_in_zero_to_max(int max)
    {
        var r = new HostRandom(3);
        for (int i = 0; i < 5000; i++)
        {
            int v = r.Next(max);
            if (v < 0 || v >= max) Assert.Fail($"Next({max}) returned {v}");
        }
    }

    [Test]
    public void Next_covers_every_value_of_a_small_range()
    {
        var r = new HostRandom(11);
        var seen = new HashSet<int>();
        for (int i = 0; i < 1000; i++) seen.Add(r.Next(6));

        Assert.That(seen, Is.EquivalentTo(new[] { 0, 1, 2, 3, 4, 5 }));
    }

    [TestCase(0)]
    [TestCase(-3)]
    public void Next_with_an_empty_range_returns_zero(int max)
    {
        Assert.That(new HostRandom(1).Next(max), Is.Zero);
    }

    [Test]
    public void NextDouble_is_in_zero_to_one()
    {
        var r = new HostRandom(5);
        for (int i = 0; i < 5000; i++)
        {
            double d = r.NextDouble();
            if (d is < 0 or >= 1) Assert.Fail($"NextDouble returned {d}");
        }
    }

    [Test]
    public void NextBytes_fills_the_whole_span_deterministically()
    {
        var a = new byte[37];
        var b = new byte[37];
        new HostRandom(9).NextBytes(a);
        new HostRandom(9).NextBytes(b);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(a, Is.EqualTo(b));
            Assert.That(a.Count(x => x != 0), Is.GreaterThan(30));
        }
    }
}
