namespace SmartOS.Storage.Tests;

public class SpaceMapTests
{
    private const int Sector = Pool.SectorSize;

    [Test]
    public void Allocation_runs_front_to_back_and_refuses_when_full()
    {
        var map = new SpaceMap(100 * Sector);
        Assert.That(map.TryAllocate(60 * Sector, out long a), Is.True);
        Assert.That(map.TryAllocate(40 * Sector, out long b), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a, Is.Zero);
            Assert.That(b, Is.EqualTo(60 * Sector));
            Assert.That(map.TryAllocate(Sector, out _), Is.False);
            Assert.That(map.FreeBytes, Is.Zero);
        }
    }

    [Test]
    public void A_freed_run_is_found_again_even_where_it_straddles_the_cursor()
    {
        var map = new SpaceMap(200 * Sector);
        map.TryAllocate(50 * Sector, out _);
        map.TryAllocate(100 * Sector, out long middle);
        map.TryAllocate(50 * Sector, out _);
        map.Free(middle, 100 * Sector);
        map.TryAllocate(10 * Sector, out long first);       // cursor now inside the freed run
        map.Free(first, 10 * Sector);
        Assert.That(map.TryAllocate(100 * Sector, out long again), Is.True);
        Assert.That(again, Is.EqualTo(middle));
    }

    [Test]
    public void Claiming_a_block_twice_is_refused()
    {
        var map = new SpaceMap(64 * Sector);
        Assert.That(map.Claim(8 * Sector, 4 * Sector), Is.True);
        Assert.That(map.Claim(10 * Sector, 4 * Sector), Is.False);
        Assert.That(map.Claim(62 * Sector, 4 * Sector), Is.False, "past the end");
        Assert.That(map.Allocated, Is.EqualTo(4 * Sector));
    }
}
